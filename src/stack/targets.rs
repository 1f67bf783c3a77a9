//! The images an upgrade will run: each upgraded service's `image:` with the version variable
//! set to the target (the rest of the variables as Compose reads them).
use std::collections::BTreeMap;

use super::{Stack, interpolate};

/// The image each upgraded service will run at `to`.
pub fn target_images(
    stack: &Stack,
    variable: &str,
    to: &str,
) -> Result<BTreeMap<String, String>, String> {
    let os_env = |k: &str| std::env::var(k).ok();
    let lookup = |k: &str| {
        if k == variable {
            Some(to.to_string())
        } else {
            os_env(k).or_else(|| stack.env_values.get(k).cloned())
        }
    };
    let mut out = BTreeMap::new();
    for name in &stack.detection.upgraded {
        let Some(raw) = stack
            .compose
            .services
            .get(name)
            .and_then(|s| s.raw_image.as_deref())
        else {
            continue;
        };
        let image = interpolate::interpolate(raw, &lookup)
            .map_err(|e| format!("the image of {name} at {to}: {e}"))?;
        out.insert(name.clone(), image);
    }
    Ok(out)
}
