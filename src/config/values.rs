//! The values a profile key or a command-line flag holds, parsed once with
//! the same rules for both: sizes (`512m`), CPU counts, durations, volumes,
//! tmpfs mounts, users and environment variables.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A value that does not parse, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}")]
pub struct ValueError {
    /// The text as given.
    pub value: String,
    /// What would have been accepted.
    pub expected: &'static str,
}

fn invalid(value: &str, expected: &'static str) -> ValueError {
    ValueError {
        value: value.to_string(),
        expected,
    }
}

/// Implements `Deserialize` through `FromStr`, so a profile accepts exactly
/// what the matching flag accepts. Integers are accepted as their text.
macro_rules! deserialize_from_str {
    ($($ty:ty),*) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Raw {
                    Text(String),
                    Int(i64),
                    Float(f64),
                }
                let text = match Raw::deserialize(d)? {
                    Raw::Text(s) => s,
                    Raw::Int(i) => i.to_string(),
                    Raw::Float(f) => f.to_string(),
                };
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
deserialize_from_str!(Size, SwapLimit, Cpus, Timeout, Volume, Tmpfs, UserSpec, EnvVar);

/// A size in bytes, written as docker does: `512m`, `1.5g`, `100k`, `4096`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl FromStr for Size {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "a size such as 512m, 1g, 100k or a number of bytes";
        let lower = s.trim().to_ascii_lowercase();
        let lower = lower
            .strip_suffix("ib")
            .or_else(|| lower.strip_suffix('b'))
            .unwrap_or(&lower);
        let split = lower
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(lower.len());
        let (number, unit) = lower.split_at(split);
        let shift = match unit {
            "" => 0,
            "k" => 10,
            "m" => 20,
            "g" => 30,
            "t" => 40,
            _ => return Err(invalid(s, EXPECTED)),
        };
        let number: f64 = number.parse().map_err(|_| invalid(s, EXPECTED))?;
        let bytes =
            number * f64::from(1u32 << (shift / 2)) * f64::from(1u32 << (shift - shift / 2));
        if !(1.0..=9.0e18).contains(&bytes) {
            return Err(invalid(s, EXPECTED));
        }
        // In range (checked just above), and sizes are whole bytes.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(Size(bytes as u64))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MIB: u64 = 1 << 20;
        const GIB: u64 = 1 << 30;
        match self.0 {
            b if b >= GIB && b % GIB == 0 => write!(f, "{} GiB", b / GIB),
            b if b >= MIB && b % MIB == 0 => write!(f, "{} MiB", b / MIB),
            b if b >= MIB => write!(f, "{:.1} MiB", b as f64 / MIB as f64),
            b => write!(f, "{b} bytes"),
        }
    }
}

/// `--memory-swap`: a size (memory plus swap), or `-1` for unlimited swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapLimit {
    /// No limit on swap.
    Unlimited,
    /// Memory plus swap, in bytes.
    Total(Size),
}

impl FromStr for SwapLimit {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "-1" {
            return Ok(SwapLimit::Unlimited);
        }
        s.parse()
            .map(SwapLimit::Total)
            .map_err(|_| invalid(s, "a size such as 1g, or -1 for unlimited swap"))
    }
}

/// A number of CPUs, possibly fractional (`--cpus 1.5`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cpus(pub f64);

impl FromStr for Cpus {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "a number of CPUs such as 1, 0.5 or 2.5";
        let cpus: f64 = s.trim().parse().map_err(|_| invalid(s, EXPECTED))?;
        if !(0.01..=4096.0).contains(&cpus) {
            return Err(invalid(s, EXPECTED));
        }
        Ok(Cpus(cpus))
    }
}

/// A duration: `30s`, `5m`, `1h`, `250ms`, or plain seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(pub Duration);

impl FromStr for Timeout {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "a duration such as 30s, 5m, 1h or 250ms";
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (number, unit) = t.split_at(split);
        let number: f64 = number.parse().map_err(|_| invalid(s, EXPECTED))?;
        let seconds = match unit {
            "" | "s" => number,
            "ms" => number / 1000.0,
            "m" => number * 60.0,
            "h" => number * 3600.0,
            _ => return Err(invalid(s, EXPECTED)),
        };
        if !seconds.is_finite() || seconds <= 0.0 || seconds > 1.0e9 {
            return Err(invalid(s, EXPECTED));
        }
        Ok(Timeout(Duration::from_secs_f64(seconds)))
    }
}

/// Where a volume's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// A host path (absolute, or relative to the current directory).
    Path(PathBuf),
    /// A named volume, kept under sunaba's data directory.
    Named(String),
}

/// `-v SRC:DST[:ro|rw]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The source.
    pub source: VolumeSource,
    /// The absolute destination inside the sandbox.
    pub destination: PathBuf,
    /// Whether it is read-only.
    pub read_only: bool,
}

/// Whether `name` is a valid named volume (docker's rule).
pub fn is_volume_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl FromStr for Volume {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "SRC:DST[:ro|rw] with an absolute DST, SRC a path (starting with / or .) or a volume name";
        let parts: Vec<&str> = s.split(':').collect();
        let (src, dst, mode) = match parts.as_slice() {
            [src, dst] => (*src, *dst, "rw"),
            [src, dst, mode] => (*src, *dst, *mode),
            _ => return Err(invalid(s, EXPECTED)),
        };
        let read_only = match mode {
            "ro" => true,
            "rw" => false,
            _ => return Err(invalid(s, EXPECTED)),
        };
        if !dst.starts_with('/') || src.is_empty() {
            return Err(invalid(s, EXPECTED));
        }
        let source = if src.starts_with('/') || src.starts_with('.') {
            VolumeSource::Path(PathBuf::from(src))
        } else if is_volume_name(src) {
            VolumeSource::Named(src.to_string())
        } else {
            return Err(invalid(s, EXPECTED));
        };
        Ok(Volume {
            source,
            destination: PathBuf::from(dst),
            read_only,
        })
    }
}

/// `--tmpfs DST[:size=..,mode=..]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpfs {
    /// The absolute destination.
    pub destination: PathBuf,
    /// The size limit in bytes, if any.
    pub size: Option<Size>,
    /// The mode of the tmpfs root, in octal.
    pub mode: Option<u32>,
    /// Other options passed through (`noexec`, `uid=..`, ...).
    pub options: Vec<String>,
}

impl FromStr for Tmpfs {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "an absolute path with options, e.g. /tmp:size=100m,mode=1777";
        let (dst, opts) = s.split_once(':').unwrap_or((s, ""));
        if !dst.starts_with('/') {
            return Err(invalid(s, EXPECTED));
        }
        let mut tmpfs = Tmpfs {
            destination: PathBuf::from(dst),
            size: None,
            mode: None,
            options: Vec::new(),
        };
        for opt in opts.split(',').filter(|o| !o.is_empty()) {
            match opt.split_once('=') {
                Some(("size", v)) => {
                    tmpfs.size = Some(v.parse().map_err(|_| invalid(s, EXPECTED))?)
                }
                Some(("mode", v)) => {
                    tmpfs.mode = Some(u32::from_str_radix(v, 8).map_err(|_| invalid(s, EXPECTED))?)
                }
                _ => match opt {
                    "ro" | "rw" | "noexec" | "exec" | "nosuid" | "nodev" => {
                        tmpfs.options.push(opt.to_string())
                    }
                    _ if opt.starts_with("uid=")
                        || opt.starts_with("gid=")
                        || opt.starts_with("nr_inodes=") =>
                    {
                        tmpfs.options.push(opt.to_string())
                    }
                    _ => return Err(invalid(s, EXPECTED)),
                },
            }
        }
        Ok(tmpfs)
    }
}

/// `-u UID[:GID]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSpec {
    /// The user id.
    pub uid: u32,
    /// The group id (the uid when not given).
    pub gid: u32,
}

impl FromStr for UserSpec {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "a numeric UID or UID:GID, e.g. 1000 or 1000:1000";
        let (uid, gid) = s.split_once(':').map_or((s, None), |(u, g)| (u, Some(g)));
        let uid: u32 = uid.trim().parse().map_err(|_| invalid(s, EXPECTED))?;
        let gid = match gid {
            Some(g) => g.trim().parse().map_err(|_| invalid(s, EXPECTED))?,
            None => uid,
        };
        Ok(UserSpec { uid, gid })
    }
}

/// `-e NAME=VALUE`, or `-e NAME` to take the value from sunaba's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// The name.
    pub name: String,
    /// The value; `None` means "pass through from the caller, if set".
    pub value: Option<String>,
}

impl FromStr for EnvVar {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, value) = s
            .split_once('=')
            .map_or((s, None), |(n, v)| (n, Some(v.to_string())));
        if name.is_empty()
            || name.contains('\0')
            || value.as_deref().is_some_and(|v| v.contains('\0'))
        {
            return Err(invalid(s, "NAME=VALUE or NAME"));
        }
        Ok(EnvVar {
            name: name.to_string(),
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_docker_units() {
        assert_eq!("512m".parse::<Size>().unwrap().0, 512 << 20);
        assert_eq!("1g".parse::<Size>().unwrap().0, 1 << 30);
        assert_eq!("1.5G".parse::<Size>().unwrap().0, 3 << 29);
        assert_eq!("100k".parse::<Size>().unwrap().0, 100 << 10);
        assert_eq!("512MB".parse::<Size>().unwrap().0, 512 << 20);
        assert_eq!("4096".parse::<Size>().unwrap().0, 4096);
        for bad in ["12q", "", "m", "-1", "0"] {
            assert!(bad.parse::<Size>().is_err(), "{bad}");
        }
        assert_eq!(Size(512 << 20).to_string(), "512 MiB");
    }

    #[test]
    fn volumes_tell_paths_from_names() {
        let v: Volume = "./input:/app/input:ro".parse().unwrap();
        assert_eq!(v.source, VolumeSource::Path("./input".into()));
        assert!(v.read_only);
        let v: Volume = "sandbox-output:/app/output".parse().unwrap();
        assert_eq!(v.source, VolumeSource::Named("sandbox-output".into()));
        assert!(!v.read_only);
        for bad in ["x", "a:relative", "/a:/b:rx", "bad name!:/x", ":/x"] {
            assert!(bad.parse::<Volume>().is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs_options_parse() {
        let t: Tmpfs = "/tmp:size=100m,mode=1777".parse().unwrap();
        assert_eq!(t.size, Some(Size(100 << 20)));
        assert_eq!(t.mode, Some(0o1777));
        assert!("/tmp:size=lots".parse::<Tmpfs>().is_err());
        assert!("tmp".parse::<Tmpfs>().is_err());
    }

    #[test]
    fn durations_and_users_parse() {
        assert_eq!(
            "250ms".parse::<Timeout>().unwrap().0,
            Duration::from_millis(250)
        );
        assert_eq!("2m".parse::<Timeout>().unwrap().0, Duration::from_secs(120));
        assert!("soon".parse::<Timeout>().is_err());
        assert_eq!(
            "1000".parse::<UserSpec>().unwrap(),
            UserSpec {
                uid: 1000,
                gid: 1000
            }
        );
        assert_eq!(
            "1:2".parse::<UserSpec>().unwrap(),
            UserSpec { uid: 1, gid: 2 }
        );
        assert!("root".parse::<UserSpec>().is_err());
    }
}
