//! Words the remediation stores (in the journal, in metric labels): each enum declares its
//! spelling once, and a spelling this version does not know parses to `None`, never to a
//! default, so a caller must decide what an unreadable value means (it blocks).

/// Declares a field-less enum with its stored spelling per variant, and `ALL`, `as_str` and
/// `parse`.
macro_rules! spelled {
    ($(#[$meta:meta])* $vis:vis enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stored spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The variant a stored spelling names; `None` for one this version does not know.
            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use spelled;

spelled! {
    /// What an operator asks of a remediation through `xenguard journal`.
    pub enum RequestKind {
        /// Let a plan waiting in `approve` mode act.
        Approve = "approve",
        /// Stop a remediation before it acts, or one that is held.
        Abort = "abort",
        /// Say a host without a fence agent is powered off.
        Attest = "attest",
        /// Let a held remediation go on with its step.
        Resume = "resume",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses_back_and_unknown_ones_do_not() {
        for kind in RequestKind::ALL {
            assert_eq!(RequestKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(RequestKind::parse("Approve"), None);
        assert_eq!(RequestKind::parse(""), None);
    }
}
