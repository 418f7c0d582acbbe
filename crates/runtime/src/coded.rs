//! Enumerations of the domain stored as the small integers of their proto
//! enums, shared by every service.

/// An enumeration of the domain whose values are stored (and sent) as the
/// small integers of its proto enum: `code` is a value's, `from_code` the
/// value of a code (`None` for 0, the proto's unspecified, and for codes it
/// does not know). `ALL` lists the values in code order.
#[macro_export]
macro_rules! coded_enum {
    (
        $(#[$attr:meta])*
        $vis:vis enum $name:ident { $($variant:ident = $code:literal),+ $(,)? }
    ) => {
        $(#[$attr])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: [Self; [$($code),+].len()] = [$(Self::$variant),+];

            /// The stored value, which is the proto value.
            pub fn code(self) -> i16 {
                match self {
                    $(Self::$variant => $code),+
                }
            }

            /// The value of a stored or proto code.
            pub fn from_code(code: i32) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
}
