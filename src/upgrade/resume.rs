//! Going on with an interrupted upgrade: with the backup it took when it had begun to change
//! the app, or from its start with a new backup when it never restarted the app and its backup
//! cannot be used.
use std::path::PathBuf;

use crate::context::Context;
use crate::journal::Journal;
use crate::run::Step;

/// An interrupted upgrade that `hoist upgrade --to V` goes on with.
pub(super) struct Resumed {
    /// The version the run started from.
    pub(super) from: String,
    pub(super) run_id: String,
    /// The backup it took, which the run goes on with (no new backup over a half-upgraded
    /// app). None: the run never restarted the app and its backup cannot be used (a kill
    /// before it was complete, or it was removed since), so a new one is taken first: the app
    /// still runs `from`, and a backup of it now is as good as the lost one.
    pub(super) backup: Option<PathBuf>,
    /// Why its backup is not used, when it is not.
    pub(super) fresh_because: Option<String>,
}

/// The interrupted run `run_id` to continue, or why it cannot be.
pub(super) async fn resumable(
    ctx: &Context,
    stack: &crate::stack::Stack,
    run_id: &str,
    to: &str,
) -> Result<Resumed, String> {
    let journal = Journal::open(&ctx.state_dir)
        .await
        .map_err(|e| e.to_string())?;
    let project = stack.project_name.clone();
    let runs = journal
        .runs(&project, 1000)
        .await
        .map_err(|e| e.to_string())?;
    let backups = journal.backups(&project).await.map_err(|e| e.to_string())?;
    journal.close().await;
    let run = runs
        .iter()
        .find(|r| r.id == run_id)
        .ok_or_else(|| format!("the journal has no run {run_id} to continue"))?;
    if run.kind != crate::journal::RunKind::Upgrade || run.to_version.as_deref() != Some(to) {
        return Err(format!("run {run_id} is not an upgrade to {to}"));
    }
    let from = run.from_version.clone().unwrap_or_default();
    let usable = match crate::resume::backup_of(run, &backups) {
        None => Err(format!("run {run_id} has no backup in the journal")),
        Some((dir, _)) => crate::backup::check(&dir)
            .map(|_| dir)
            .map_err(|e| format!("the backup of run {run_id} cannot be used ({e})")),
    };
    let why = match usable {
        Ok(dir) => {
            return Ok(Resumed {
                from,
                run_id: run.id.clone(),
                backup: Some(dir),
                fresh_because: None,
            });
        }
        Err(why) => why,
    };
    // Only a run whose backup is lost needs to know whether it restarted the app.
    let restarted = run.steps.iter().any(|s| s.name == Step::Restart.name())
        || recreated_since(ctx, stack, &run.started_at).await;
    if restarted {
        return Err(format!(
            "{why}, and that run had already restarted the app, so hoist has no backup from before the change to continue or roll back with. `hoist status` shows what runs now; the backup directory's RESTORE.md files say how to restore an older backup by hand"
        ));
    }
    Ok(Resumed {
        from,
        run_id: run.id.clone(),
        backup: None,
        fresh_because: Some(why),
    })
}

/// Whether a container of an upgraded service was started at or after `since` (a journal
/// time), or that cannot be told (no such container found, e.g. a stack started under
/// another project name): the journal records a restart before `up -d` runs, but this looks
/// at what Docker says too, in case the journal could not be written.
async fn recreated_since(ctx: &Context, stack: &crate::stack::Stack, since: &str) -> bool {
    let Ok(since) = since.parse::<jiff::Timestamp>() else {
        return true;
    };
    let Ok(engine) = crate::docker::Engine::connect(ctx.docker_timeout).await else {
        return true;
    };
    let Ok(containers) = crate::docker::stack_containers(&engine, &stack.project_name).await else {
        return true;
    };
    let upgraded: Vec<_> = containers
        .iter()
        .filter(|c| stack.detection.upgraded.contains(&c.service))
        .collect();
    upgraded.is_empty()
        || upgraded.iter().any(|c| {
            c.started_at
                .as_deref()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .is_none_or(|t| t >= since)
        })
}
