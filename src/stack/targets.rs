//! The images an upgrade will run: each upgraded service's `image:` with the version variable
//! set to the target (the rest of the variables as Compose reads them).
use std::collections::BTreeMap;

use super::{Stack, interpolate};

/// The image each upgraded service will run at `to`.
pub fn target_images(stack: &Stack, to: &str) -> Result<BTreeMap<String, String>, String> {
    let site = &stack.detection.version.site;
    let variable = match site {
        super::locate::Site::Env { variable } => variable.as_str(),
        super::locate::Site::Tags { image, .. } => {
            return Ok(stack
                .detection
                .upgraded
                .iter()
                .map(|name| {
                    let own = stack
                        .compose
                        .services
                        .get(name)
                        .and_then(|s| s.raw_image.as_deref())
                        .unwrap_or(image);
                    (name.clone(), super::pin::retagged(own, to))
                })
                .collect());
        }
        super::locate::Site::Image { image, .. } => {
            return Ok(stack
                .detection
                .upgraded
                .iter()
                .map(|name| (name.clone(), super::pin::retagged(image, to)))
                .collect());
        }
        super::locate::Site::Unknown { reason } => return Err(reason.clone()),
    };
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
