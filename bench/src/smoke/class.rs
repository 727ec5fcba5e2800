//! The seed's object classes and their bytes.

use std::fmt;
use std::str::FromStr;

/// An object class of the svc-overlay seed's integration load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 1 KiB.
    S,
    /// 64 KiB.
    M,
    /// 1 MiB.
    L,
}

impl Class {
    pub const ALL: [Class; 3] = [Class::S, Class::M, Class::L];

    /// The object's size in bytes.
    pub const fn bytes(self) -> usize {
        match self {
            Class::S => 1024,
            Class::M => 64 * 1024,
            Class::L => 1024 * 1024,
        }
    }

    /// `S`, `M` or `L`.
    pub const fn label(self) -> &'static str {
        match self {
            Class::S => "S",
            Class::M => "M",
            Class::L => "L",
        }
    }

    /// The file name the object gets for an HTTP server: `obj-1k`, `obj-64k`, `obj-1m`.
    pub const fn file_name(self) -> &'static str {
        match self {
            Class::S => "obj-1k",
            Class::M => "obj-64k",
            Class::L => "obj-1m",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl FromStr for Class {
    type Err = String;
    fn from_str(s: &str) -> Result<Class, String> {
        match s.to_ascii_lowercase().as_str() {
            "s" | "1k" | "1kib" => Ok(Class::S),
            "m" | "64k" | "64kib" => Ok(Class::M),
            "l" | "1m" | "1mib" => Ok(Class::L),
            _ => Err(format!(
                "unknown class {s:?}: expected S, M or L (1k, 64k, 1m)"
            )),
        }
    }
}

/// The class's object: `class.bytes()` pseudo-random bytes (xorshift64*, seeded by the size), so
/// the same bytes, and the same `b3:` address, wherever they are made.
pub fn class_object(class: Class) -> Vec<u8> {
    let n = class.bytes();
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ n as u64;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_deterministic_and_sized() {
        for c in Class::ALL {
            let a = class_object(c);
            assert_eq!(a.len(), c.bytes());
            assert_eq!(a, class_object(c));
            assert_eq!(c.label().parse::<Class>().unwrap(), c);
        }
        assert_ne!(class_object(Class::S)[..], class_object(Class::M)[..1024]);
    }
}
