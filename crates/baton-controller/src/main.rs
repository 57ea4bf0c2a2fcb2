//! The `baton` binary: the operator, and tools for people and scripts.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use baton_controller::edit_cmd;

#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "GitOps environment promotion for Argo CD"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply a promotion's edit to one YAML file, keeping every other byte (preview by default).
    Edit(edit_cmd::EditArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Edit(args) => match edit_cmd::run(&args) {
            Ok(Some(text)) => {
                let mut out = std::io::stdout().lock();
                if out
                    .write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return ExitCode::FAILURE;
                }
                ExitCode::SUCCESS
            }
            Ok(None) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("baton edit: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
