//! Pulling images with per-layer progress (`Event::Pull`, a few times a second and at each layer
//! done), going on where it stopped when the Docker daemon restarts under it, and bounded by
//! `timeouts.pull` when that is set. The upgrade pulls the new images; a rollback pulls the
//! previous ones again when they were removed.
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use super::StepError;
use super::engine_loss::{After, EngineLoss};
use crate::docker::{Engine, images};
use crate::run::Event;

/// Pulls each of `references`. `say` tells the user of a daemon that went away and came back.
pub(crate) async fn pull_images(
    engine: &Engine,
    references: &[String],
    engine_loss: &EngineLoss,
    timeout: Option<Duration>,
    events: &UnboundedSender<Event>,
    say: &(dyn Fn(String) + Sync),
) -> Result<(), StepError> {
    let all = async {
        for reference in references {
            let mut tally = crate::docker::pull_tally::PullTally::default();
            let mut last: Option<Instant> = None;
            let mut report = |p: images::PullProgress| {
                let milestone = tally.see(&p);
                if milestone || last.is_none_or(|t| t.elapsed() >= crate::run::PROGRESS_EVERY) {
                    last = Some(Instant::now());
                    let _ = events.send(Event::Pull {
                        image: reference.clone(),
                        progress: tally.snapshot(),
                        done: false,
                    });
                }
            };
            loop {
                let mark = engine_loss.mark();
                let Err(error) = images::pull(engine, reference, &mut report).await else {
                    break;
                };
                // Layers already down are kept by the engine: the pull goes on where it was.
                match engine_loss.after_failure(mark, "the pull", say).await {
                    After::NotEngine => return Err(StepError::Own(error.to_string())),
                    After::Gone(why) => return Err(StepError::Engine(why)),
                    After::Again => {}
                }
            }
            let _ = events.send(Event::Pull {
                image: reference.clone(),
                progress: tally.snapshot(),
                done: true,
            });
        }
        Ok(())
    };
    match timeout {
        Some(limit) => tokio::time::timeout(limit, all).await.unwrap_or_else(|_| {
            Err(StepError::Own(format!(
                "the download did not finish within {} s (x-hoist timeouts.pull)",
                limit.as_secs()
            )))
        }),
        None => all.await,
    }
}
