//! OAP/1 header flags and frame kinds (PROTOCOL.md section 2).

use std::fmt;

/// The `flags` field of an OAP/1 header.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u16);

impl Flags {
    pub const REQ: Flags = Flags(0x0001);
    pub const RESP: Flags = Flags(0x0002);
    pub const EVENT: Flags = Flags(0x0004);
    pub const START: Flags = Flags(0x0008);
    pub const END: Flags = Flags(0x0010);
    pub const ACK_REQ: Flags = Flags(0x0020);
    pub const COMP: Flags = Flags(0x0040);
    pub const APP_E2E: Flags = Flags(0x0080);
    /// Every defined bit; the HELLO reply's `flags_supported`.
    pub const KNOWN: Flags = Flags(0x00ff);
    pub const EMPTY: Flags = Flags(0);

    /// Names in ascending bit order, as the inspector and PROTOCOL.md print them.
    pub const NAMES: [(Flags, &'static str); 8] = [
        (Flags::REQ, "REQ"),
        (Flags::RESP, "RESP"),
        (Flags::EVENT, "EVENT"),
        (Flags::START, "START"),
        (Flags::END, "END"),
        (Flags::ACK_REQ, "ACK_REQ"),
        (Flags::COMP, "COMP"),
        (Flags::APP_E2E, "APP_E2E"),
    ];

    pub const fn from_bits(bits: u16) -> Flags {
        Flags(bits)
    }

    pub const fn bits(self) -> u16 {
        self.0
    }

    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    pub const fn without(self, other: Flags) -> Flags {
        Flags(self.0 & !other.0)
    }

    /// Bits outside the defined set.
    pub const fn unknown_bits(self) -> u16 {
        self.0 & !Flags::KNOWN.0
    }

    /// Names of the defined bits that are set, in ascending bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Flags::NAMES
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, n)| n)
    }

    /// The kind, if exactly one of REQ, RESP and EVENT is set.
    pub const fn kind(self) -> Option<Kind> {
        match self.0 & 0x0007 {
            0x0001 => Some(Kind::Req),
            0x0002 => Some(Kind::Resp),
            0x0004 => Some(Kind::Event),
            _ => None,
        }
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.union(rhs)
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for name in self.names() {
            if !first {
                f.write_str("|")?;
            }
            f.write_str(name)?;
            first = false;
        }
        if self.unknown_bits() != 0 {
            write!(
                f,
                "{}{:#06x}",
                if first { "" } else { "|" },
                self.unknown_bits()
            )?;
        } else if first {
            f.write_str("(none)")?;
        }
        Ok(())
    }
}

/// What a frame is: exactly one of REQ, RESP and EVENT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Req,
    Resp,
    Event,
}

impl Kind {
    pub const fn flag(self) -> Flags {
        match self {
            Kind::Req => Flags::REQ,
            Kind::Resp => Flags::RESP,
            Kind::Event => Flags::EVENT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_in_bit_order() {
        let f = Flags::COMP | Flags::REQ | Flags::START;
        assert_eq!(f.names().collect::<Vec<_>>(), ["REQ", "START", "COMP"]);
        assert_eq!(format!("{:?}", Flags::from_bits(0x0101)), "REQ|0x0100");
    }

    #[test]
    fn kind_needs_exactly_one() {
        assert_eq!(Flags::REQ.kind(), Some(Kind::Req));
        assert_eq!((Flags::EVENT | Flags::ACK_REQ).kind(), Some(Kind::Event));
        assert_eq!((Flags::REQ | Flags::RESP).kind(), None);
        assert_eq!(Flags::START.kind(), None);
    }
}
