use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = jitr_cli::args::Cli::parse();
    let json = cli.global.json;
    match jitr_cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            jitr_cli::report::error(&err, json);
            ExitCode::from(err.exit_code())
        }
    }
}
