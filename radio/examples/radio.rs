//! `cargo run -p feedlab-radio --example radio -- --profile lte --every 25s --bytes 300`: the
//! command as `loadgen radio` will run it, until loadgen wires it in.

use clap::Parser;

#[derive(Parser)]
#[command(about = "What a message pattern costs a phone's radio")]
struct Cli {
    #[command(flatten)]
    radio: feedlab_radio::Args,
}

fn main() {
    match feedlab_radio::run(&Cli::parse().radio) {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    }
}
