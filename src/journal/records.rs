//! What the journal says of a run, typed: its kind, how it ended, a step's status. Stored as
//! the same words in the database and in `hoist history --json`.
use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! words {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $word:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($variant,)+
            /// A word this version of hoist does not know (a journal written by a newer one).
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $word,)+
                    $name::Other(s) => s,
                }
            }

            pub fn parse(s: &str) -> $name {
                match s {
                    $($word => $name::$variant,)+
                    other => $name::Other(other.to_string()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(|s| $name::parse(&s))
            }
        }
    };
}

words! {
    /// What a run was.
    RunKind {
        Backup => "backup",
        Upgrade => "upgrade",
        Rollback => "rollback",
        Restore => "restore",
    }
}

words! {
    /// How a run ended, or `Running` while it goes on (or since it was killed).
    Outcome {
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Refused => "refused",
        RolledBack => "rolled_back",
        Stopped => "stopped",
        NeedsDecision => "needs_decision",
        DryRun => "dry_run",
    }
}

words! {
    /// Where a step is.
    StepState {
        Running => "running",
        Done => "done",
        Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_unknown_ones_are_kept() {
        for o in [
            Outcome::Running,
            Outcome::RolledBack,
            Outcome::NeedsDecision,
            Outcome::DryRun,
        ] {
            assert_eq!(Outcome::parse(o.as_str()), o);
        }
        assert_eq!(Outcome::parse("later"), Outcome::Other("later".into()));
        assert_eq!(
            serde_json::to_value(Outcome::RolledBack).unwrap(),
            serde_json::json!("rolled_back")
        );
        assert_eq!(RunKind::parse("upgrade"), RunKind::Upgrade);
        assert_eq!(StepState::parse("done").to_string(), "done");
    }
}
