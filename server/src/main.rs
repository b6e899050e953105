use clap::Parser as _;

fn main() -> anyhow::Result<()> {
    server::main_with(server::Config::parse())
}
