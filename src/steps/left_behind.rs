//! Services a killed hoist stopped for a backup's copy and never started again (the journal
//! still holds the stop's record): started again before a run looks at the stack, so that the
//! run neither blames them nor copies them stopped by accident.
use crate::context::Context;

/// Starts them, and returns what was done in sentences. Nothing to do, or no journal or
/// Docker to ask: nothing said (`status` names what is still stopped).
pub async fn start_again(ctx: &Context, project: &str) -> Vec<String> {
    let Ok(journal) = crate::journal::Journal::open(&ctx.state_dir).await else {
        return Vec::new();
    };
    let holds = journal.unfinished_holds(project).await.unwrap_or_default();
    let said = if holds.is_empty() {
        Vec::new()
    } else {
        match crate::docker::Engine::connect(ctx.docker_timeout).await {
            Ok(engine) => {
                crate::backup::hold::start_left_behind(
                    &engine,
                    &journal,
                    project,
                    &crate::resume::pid_alive,
                )
                .await
            }
            Err(_) => Vec::new(),
        }
    };
    journal.close().await;
    said
}
