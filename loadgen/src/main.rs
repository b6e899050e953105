use std::process::ExitCode;

use clap::Parser as _;
use loadgen::cli::{Cli, Command};

/// Exit code 0: the run completed without loss or errors; 1: it completed and found loss or
/// errors (the summary says which); 2: it could not run.
fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Serve { args }) = cli.command {
        // The spawned server when no `server` executable sits next to loadgen (see server_proc).
        return match loadgen::server_proc::serve(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadgen serve: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(Command::Summarize { report }) = &cli.command {
        return match feedlab_report::summarize(report) {
            Ok(table) => {
                print!("{table}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("loadgen summarize: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(Command::Merge(args)) = &cli.command {
        let command: Vec<String> = std::env::args().collect();
        return match loadgen::merge::run(args, command.join(" ")) {
            Ok(merged) => {
                println!("{}", args.out.join("report.md").display());
                if merged.loss {
                    eprintln!("loadgen merge: the merged run did not deliver every event exactly once (see report.md)");
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(e) => {
                eprintln!("loadgen merge: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(Command::Decide(args)) = &cli.command {
        return match loadgen::decide::run(args) {
            Ok(answer) => {
                print!("{answer}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("loadgen decide: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(Command::Radio(args)) = &cli.command {
        return match feedlab_radio::run(args) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("loadgen radio: {e}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(Command::Render { dir }) = &cli.command {
        return match feedlab_report::render(dir) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("loadgen render: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(Command::Link(args)) = cli.command {
        return match runtime.block_on(loadgen::link_tool::run(args)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadgen link: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(Command::Costs(args)) = &cli.command {
        return match runtime.block_on(loadgen::costs::run(args)) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadgen costs: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    if let Some(Command::Usecase(args)) = cli.command.clone() {
        return match runtime.block_on(loadgen::usecase::run(args)) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("loadgen usecase: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    if !cli.args.scenario.is_empty() {
        let user: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        return match runtime.block_on(loadgen::run::scenarios::execute_scenarios(
            user,
            &cli.args.scenario,
            loadgen::run::Mode::Cli,
        )) {
            Ok(d) if d.outcomes.iter().all(loadgen::Outcome::clean) => ExitCode::SUCCESS,
            Ok(_) => ExitCode::from(1),
            Err(e) => {
                eprintln!("loadgen: {e:#}");
                ExitCode::from(2)
            }
        };
    }
    match runtime.block_on(loadgen::execute(cli.args, loadgen::run::Mode::Cli)) {
        Ok(outcome) if outcome.clean() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            ExitCode::from(2)
        }
    }
}
