//! hoist's binary: parse the command line, set up the log file, run one command, exit with the
//! code the README promises (0 done, 1 needs attention, 2 bad input, 3 refused, 4 rolled back).
use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use hoist::context::Context;
use hoist::report::{self, Output};

mod cli;
mod headless;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = match Context::from_args(
        cli.global.project_dir.clone(),
        cli.global.file.clone(),
        cli.global.env_file.clone(),
        cli.global.backup_dir.clone(),
        cli.global.state_dir.clone(),
    ) {
        Ok(ctx) => ctx,
        Err(err) => {
            eprintln!("hoist: {err}");
            return ExitCode::from(2);
        }
    };
    // The guard flushes the log file on exit; logging never goes to the terminal.
    let _log_guard = match hoist::logging::init(&ctx.state_dir) {
        Ok(guard) => Some(guard),
        Err(err) => {
            eprintln!("hoist: warning: {err}; continuing without a log file.");
            None
        }
    };
    let Some(command) = cli.command else {
        return wizard(&ctx);
    };
    if let Some(code) = generated(&command) {
        return code;
    }
    // Commands that change the stack take the project's lock; the read-only ones need not wait.
    // A dry run changes nothing. Declared before the runtime so it is released after all work.
    let lock_name = match &command {
        Command::Upgrade { dry_run: false, .. } => Some("upgrade"),
        Command::Rollback { .. } => Some("rollback"),
        Command::Restore { .. } => Some("restore"),
        Command::Backup => Some("backup"),
        _ => None,
    };
    let _lock = match lock_name.map(|name| take_lock(&ctx, name, cli.global.json)) {
        Some(Ok(lock)) => Some(lock),
        Some(Err(code)) => return code,
        None => None,
    };
    let Some(runtime) = runtime() else {
        return ExitCode::from(1);
    };
    tracing::info!(?command, project_dir = %ctx.paths.project_dir.display(), "hoist {} started", hoist::build_info::LONG);
    if let Command::Upgrade {
        to,
        dry_run,
        path,
        rehearse,
    } = &command
    {
        let how = UpgradeHow {
            dry_run: *dry_run,
            rehearse: *rehearse,
            path: *path,
        };
        return upgrade(&runtime, &ctx, &cli.global, to, &how);
    }
    if let Command::Rollback { run } = &command {
        let json = cli.global.json;
        let answers = hoist::run::Headless(cli.global.yes);
        // A rollback is finished, not stopped: a signal only loses its terminal.
        let stop = hoist::run::Stop::default();
        return headless::run_engine(&runtime, json, answers, "rollback", stop, |tx| async move {
            hoist::rollback::run_last(&ctx, run.as_deref(), &tx).await
        });
    }
    if let Command::Restore { dir } = &command {
        let answers = hoist::run::Headless(cli.global.yes);
        // A restore is finished, not stopped, as a rollback is.
        let stop = hoist::run::Stop::default();
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
        let json = cli.global.json;
        return headless::run_engine(&runtime, json, answers, "restore", stop, |tx| async move {
            hoist::rollback::run_restore(&ctx, &dir, &tx).await
        });
    }
    let output: Output = runtime.block_on(async {
        // A backup under way finishes (or fails cleanly) even if the terminal goes away.
        let _signals = matches!(command, Command::Backup)
            .then(|| hoist::signals::stop_on_signals(hoist::run::Stop::default()));
        match command {
            Command::Status => report::status::run(&ctx).await,
            Command::Backup => {
                // What a long backup is doing, as it does it (the report comes at the end).
                let say = |line: &str| eprintln!("backup: {line}");
                let live: Option<&(dyn Fn(&str) + Sync)> = (!cli.global.json).then_some(&say);
                report::backup::run(&ctx, live).await
            }
            Command::History => report::history::run(&ctx).await,
            Command::Versions => report::versions::run(&ctx).await,
            _ => report::check::run(&ctx).await,
        }
    });
    print(output, cli.global.json)
}

/// The wizard, when no command is given: it needs a terminal that can be seen.
fn wizard(ctx: &Context) -> ExitCode {
    use std::io::IsTerminal;
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        eprintln!(
            "hoist: the wizard needs a terminal. Without one, use the commands: `hoist check`, `hoist upgrade --to VERSION --yes`, `hoist rollback --yes`, `hoist restore DIR --yes`.\n"
        );
        let _ = Cli::command().print_help();
        return ExitCode::from(2);
    }
    // `ssh -tt` with a pipe for stdin gives a terminal of no size: the wizard would take
    // keys while showing nothing. `docker run -it` sets the size a moment after the process
    // starts, so a size of 0 is asked again for a second before it counts.
    let no_size = || matches!(ratatui::crossterm::terminal::size(), Ok((0, _) | (_, 0)));
    let mut waited = 0;
    while no_size() && waited < 20 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        waited += 1;
    }
    if no_size() {
        eprintln!(
            "hoist: this terminal reports no size (0x0), so the wizard could not be seen. Connect from a terminal window (`ssh -t`), or use the commands: `hoist check`, `hoist upgrade --to VERSION --yes`, `hoist rollback --yes`, `hoist restore DIR --yes`."
        );
        return ExitCode::from(2);
    }
    // Held for the wizard's whole life: it may change the stack at any point.
    let _lock = match take_lock(ctx, "wizard", false) {
        Ok(lock) => lock,
        Err(code) => return code,
    };
    let Some(runtime) = runtime() else {
        return ExitCode::from(1);
    };
    tracing::info!("hoist {} wizard started", hoist::build_info::LONG);
    let code = runtime.block_on(hoist::tui::app::run(ctx));
    tracing::info!(exit_code = code, "wizard finished");
    ExitCode::from(code)
}

/// `completions` and `man` print what clap generates and need no project; other commands `None`.
fn generated(command: &Command) -> Option<ExitCode> {
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "hoist", &mut std::io::stdout());
            Some(ExitCode::SUCCESS)
        }
        Command::Man => {
            let man = clap_mangen::Man::new(Cli::command());
            let mut out = Vec::new();
            if let Err(err) = man.render(&mut out) {
                eprintln!("hoist: could not render the man page: {err}");
                return Some(ExitCode::from(1));
            }
            let _ = std::io::stdout().write_all(&out);
            Some(ExitCode::SUCCESS)
        }
        Command::Status
        | Command::Check
        | Command::Versions
        | Command::Backup
        | Command::History
        | Command::Upgrade { .. }
        | Command::Rollback { .. }
        | Command::Restore { .. } => None,
    }
}

/// How `hoist upgrade` was asked to go.
struct UpgradeHow {
    dry_run: bool,
    rehearse: bool,
    path: cli::UpgradePath,
}

/// `hoist upgrade`, headless: an interrupted run to the same version is continued.
fn upgrade(
    runtime: &tokio::runtime::Runtime,
    ctx: &Context,
    global: &cli::Global,
    to: &str,
    how: &UpgradeHow,
) -> ExitCode {
    let (dry_run, path) = (how.dry_run, &how.path);
    let json = global.json;
    // An interrupted run to the same version, which had already changed the stack, is
    // continued (with its backup) rather than started again over a half-upgraded app.
    let attention = runtime.block_on(hoist::resume::for_context(ctx));
    let resume = attention.as_ref().and_then(|a| {
        (a.state == "interrupted" && a.changed && a.to.as_deref() == Some(to.trim()))
            .then(|| a.run_id.clone())
    });
    if let Some(a) = &attention
        && !json
    {
        let _ = writeln!(
            std::io::stderr(),
            "hoist: note: {}{}",
            a.sentence,
            if resume.is_some() {
                " Continuing it now."
            } else {
                ""
            }
        );
    }
    let stop = hoist::run::Stop::default();
    let request = hoist::upgrade::Request {
        to: to.to_string(),
        dry_run,
        path: match path {
            cli::UpgradePath::Steps => hoist::upgrade::PathMode::Steps,
            cli::UpgradePath::Direct => hoist::upgrade::PathMode::Direct,
        },
        stop: stop.clone(),
        resume,
        rehearse: how.rehearse,
        offer_rehearsal: !global.yes && !json && headless::at_a_terminal(),
    };
    let answers = hoist::run::Headless(global.yes);
    headless::run_engine(runtime, json, answers, "upgrade", stop, |tx| async move {
        hoist::recovery::upgrade(ctx, &request, &tx).await
    })
}

/// A report's output printed (JSON Lines or human lines), its exit code given.
fn print(output: Output, json: bool) -> ExitCode {
    tracing::info!(exit_code = output.exit_code, "finished");
    if !output.errors.is_empty() {
        tracing::warn!("{}", output.errors.trim());
    }
    let rendered = if json {
        output.json_lines()
    } else {
        output.human()
    };
    // A closed pipe (`hoist status | head`) is not an error worth a panic.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(rendered.stdout.as_bytes());
    let _ = stdout.flush();
    if !rendered.stderr.is_empty() {
        let _ = std::io::stderr().write_all(rendered.stderr.as_bytes());
    }
    ExitCode::from(output.exit_code)
}

/// Takes the project's lock for `command`, or prints why not (refused: another hoist holds it,
/// exit 3; the lock cannot be taken, exit 2) and gives the exit code. A stale lock left by a
/// hoist that died is taken over, and said in the log and on stderr.
fn take_lock(
    ctx: &Context,
    command: &str,
    json: bool,
) -> Result<hoist::lock::ProjectLock, ExitCode> {
    match hoist::lock::acquire(&ctx.state_dir, &ctx.paths.project_dir) {
        Ok(acquired) => {
            if let Some(sentence) = acquired.takeover_sentence() {
                tracing::warn!("{sentence}");
                eprintln!("hoist: note: {sentence}");
            }
            tracing::info!(lock = %acquired.lock.path().display(), "{command}: lock taken");
            Ok(acquired.lock)
        }
        Err(err) => {
            let sentence = err.sentence();
            tracing::warn!("{command} not run: {sentence}");
            if json {
                let _ = writeln!(std::io::stdout().lock(), "{}", err.summary(command));
            }
            let _ = writeln!(std::io::stderr().lock(), "hoist: {sentence}");
            Err(ExitCode::from(err.exit_code()))
        }
    }
}

/// The async runtime every command but the completions and the man page runs on.
fn runtime() -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(err) => {
            eprintln!("hoist: could not start: {err}");
            None
        }
    }
}
