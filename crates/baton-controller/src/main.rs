//! The `baton` binary: the operator, and tools for people and scripts.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use baton_controller::cli::{self, promote, promote_io, rollback, status, status_io};
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
    /// Run the operator against the current kubeconfig or in-cluster config.
    Run(baton_controller::run::RunArgs),
    /// Apply a promotion's edit to one YAML file, keeping every other byte (preview by default).
    Edit(edit_cmd::EditArgs),
    /// Promote service versions to an Environment: create the Promotion (from CI or a terminal).
    Promote(promote::PromoteArgs),
    /// Roll services back to their last good version in an Environment (one pull request).
    Rollback(rollback::RollbackArgs),
    /// Let a rolled-back version be promoted to an Environment again.
    Unblock(rollback::UnblockArgs),
    /// Show what runs where: services x Environments, what Argo CD runs, Promotions on
    /// their way, and drift.
    Status(status::StatusArgs),
}

fn main() -> ExitCode {
    // Installed as `kubectl-baton`, kubectl runs it as a plugin: usage should say so.
    let program = cli::program_name(std::env::args_os().next().as_deref());
    let parsed = Cli::command()
        .bin_name(program)
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Usage errors exit 1, not clap's 2: `baton promote --wait` keeps 2 for
            // "timed out", so a CI script can tell the two apart. `baton status
            // --check` keeps 1 for "drift", so there a usage error is 2, like any
            // other failure to build the board.
            return if !e.use_stderr() {
                ExitCode::SUCCESS
            } else if std::env::args_os().nth(1).as_deref() == Some("status".as_ref()) {
                ExitCode::from(status::EXIT_ERROR)
            } else {
                ExitCode::FAILURE
            };
        }
    };
    match cli.command {
        Command::Promote(args) => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("{program} promote: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(promote_io::run(&args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{program} promote: {e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Command::Rollback(args) => {
            let result = block_on(program, "rollback", rollback::run_rollback(&args));
            finish(program, "rollback", result)
        }
        Command::Unblock(args) => {
            let result = block_on(program, "unblock", rollback::run_unblock(&args));
            finish(program, "unblock", result)
        }
        Command::Status(args) => {
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("{program} status: cannot start the async runtime: {e}");
                    return ExitCode::from(status::EXIT_ERROR);
                }
            };
            match runtime.block_on(status_io::run(&args)) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("{program} status: {e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Command::Run(args) => {
            // Before the runtime's threads exist: they would each get a heap of their own.
            baton_sys::one_heap_arena();
            init_logging();
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("baton run: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(baton_controller::run::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "baton run failed");
                    eprintln!("baton run: {e}");
                    ExitCode::FAILURE
                }
            }
        }
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

/// Runs a CLI command's future on a fresh runtime.
fn block_on<T>(
    program: &str,
    verb: &str,
    fut: impl std::future::Future<Output = Result<T, rollback::RollbackCmdError>>,
) -> Option<Result<T, rollback::RollbackCmdError>> {
    match tokio::runtime::Runtime::new() {
        Ok(rt) => Some(rt.block_on(fut)),
        Err(e) => {
            eprintln!("{program} {verb}: cannot start the async runtime: {e}");
            None
        }
    }
}

fn finish(
    program: &str,
    verb: &str,
    result: Option<Result<(), rollback::RollbackCmdError>>,
) -> ExitCode {
    match result {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(e)) => {
            eprintln!("{program} {verb}: {e}");
            ExitCode::from(e.exit_code())
        }
        None => ExitCode::FAILURE,
    }
}

/// Logs via tracing; JSON when `BATON_LOG_FORMAT=json`, level from `RUST_LOG` (default info).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("BATON_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
