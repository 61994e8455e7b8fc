//! Profiles: TOML files of settings, found by name or by path.
//!
//! A name is looked up, in order, in `$SUNABA_PROFILE_PATH` (colon-separated
//! directories), `/etc/sunaba/profiles`, `<prefix>/share/sunaba/profiles`
//! next to the installed binary, the `profiles/` directory of the source tree
//! the binary was built in, and finally the copies of `default` and `agent`
//! built into the binary, so a lone binary still has both.

use std::path::{Path, PathBuf};

use super::layer::Layer;

/// The built-in profiles, the same files as in `profiles/`.
const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../profiles/default.toml")),
    ("agent", include_str!("../../profiles/agent.toml")),
];

/// How deep `extends` may chain; deeper is almost surely a loop.
const MAX_EXTENDS: usize = 8;

/// A profile that cannot be found or read.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// No file for the name.
    #[error("profile {name:?} not found (looked in {searched}); give a path to a .toml file or one of: {available}")]
    NotFound {
        /// The name asked for.
        name: String,
        /// The directories searched.
        searched: String,
        /// The names that do exist.
        available: String,
    },
    /// The file could not be read.
    #[error("cannot read profile {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid profile.
    #[error("invalid profile {origin}: {message}")]
    Parse {
        /// The file, or `built-in NAME`.
        origin: String,
        /// What the TOML parser said, with line and column.
        message: String,
    },
    /// `extends` chains loop or go too deep.
    #[error("profile {0:?} extends itself through a loop (or more than 8 levels)")]
    ExtendsLoop(String),
}

/// Where profiles named without a path are searched.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("SUNABA_PROFILE_PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/etc/sunaba/profiles"));
    if let Some(prefix) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent()?.parent().map(Path::to_path_buf))
    {
        dirs.push(prefix.join("share/sunaba/profiles"));
    }
    dirs.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles"));
    dirs
}

/// Finds the text of profile `name`: a path if it contains `/` or ends in
/// `.toml`, else the first match in [`search_dirs`] or the built-ins.
fn find(name: &str) -> Result<(String, String), ProfileError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map(|text| (path.display().to_string(), text))
            .map_err(|source| ProfileError::Read {
                path: path.to_path_buf(),
                source,
            })
    };
    if name.contains('/') || name.ends_with(".toml") {
        return read(Path::new(name));
    }
    let dirs = search_dirs();
    for dir in &dirs {
        let path = dir.join(format!("{name}.toml"));
        if path.is_file() {
            return read(&path);
        }
    }
    if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name) {
        return Ok((format!("built-in {name}"), (*text).to_string()));
    }
    let mut available: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    for dir in &dirs {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml") {
                if let Some(stem) = path.file_stem() {
                    available.push(stem.to_string_lossy().into_owned());
                }
            }
        }
    }
    available.sort();
    available.dedup();
    Err(ProfileError::NotFound {
        name: name.to_string(),
        searched: dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        available: available.join(", "),
    })
}

/// Parses profile text.
///
/// # Errors
///
/// TOML syntax, unknown keys and bad values, with the origin and position.
pub fn parse(origin: &str, text: &str) -> Result<Layer, ProfileError> {
    let layer: Layer = toml::from_str(text).map_err(|e| ProfileError::Parse {
        origin: origin.to_string(),
        message: e.to_string(),
    })?;
    if layer
        .description
        .as_deref()
        .is_none_or(|d| d.trim().is_empty())
    {
        return Err(ProfileError::Parse {
            origin: origin.to_string(),
            message: "missing `description`: every profile opens with a one-line purpose"
                .to_string(),
        });
    }
    Ok(layer)
}

/// Loads profile `name` with everything it extends, merged.
///
/// # Errors
///
/// A profile not found, unreadable or invalid, or an `extends` loop.
pub fn load(name: &str) -> Result<Layer, ProfileError> {
    let mut chain = Vec::new();
    let mut next = Some(name.to_string());
    while let Some(current) = next {
        if chain.len() >= MAX_EXTENDS {
            return Err(ProfileError::ExtendsLoop(name.to_string()));
        }
        let (origin, text) = find(&current)?;
        let layer = parse(&origin, &text)?;
        next = layer.extends.clone();
        chain.push(layer);
    }
    let mut merged = Layer::default();
    for layer in chain.into_iter().rev() {
        merged.merge(layer);
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_profiles_parse_and_agent_extends_default() {
        for (name, text) in BUILTIN {
            parse(name, text).unwrap();
        }
        let agent = load("agent").unwrap();
        assert_eq!(agent.security.no_new_privileges, Some(true));
        assert_eq!(agent.filesystem.read_only, Some(true));
        assert_eq!(agent.security.capabilities, Some(vec![]));
        assert_eq!(agent.process.hostname.as_deref(), Some("sunaba"));
    }

    #[test]
    fn missing_profile_names_the_choices() {
        let err = load("no-such-profile").unwrap_err().to_string();
        assert!(
            err.contains("no-such-profile") && err.contains("agent"),
            "{err}"
        );
    }

    #[test]
    fn a_profile_needs_a_description() {
        assert!(parse("x", "[network]\nmode = \"none\"").is_err());
    }
}
