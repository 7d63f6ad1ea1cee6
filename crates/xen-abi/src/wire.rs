//! Little-endian encoding of the structures, field by field, without `unsafe`.
//!
//! [`xen_struct!`](crate::xen_struct) declares a `#[repr(C)]` structure together with the
//! offset of every field (checked against the compiler's layout at compile time) and derives
//! from them:
//!
//! - `SIZE`, `from_bytes(&[u8; SIZE])` and `to_bytes() -> [u8; SIZE]` (inherent);
//! - [`XenStruct`](crate::XenStruct) (`read_from` / `write_to` on slices, for generic code);
//! - `FIELDS`: the layout table ([`FieldInfo`](crate::FieldInfo)), used by the tests;
//! - `Default` (all bytes zero).
//!
//! The crate-private [`Field`] trait encodes one field: the integer types, arrays of fields and
//! every declared structure (so structures nest).

/// One field of a structure: how many bytes it takes and how it is read and written.
///
/// `decode` and `encode` are only called by the generated code with slices that start at the
/// field's offset inside a buffer of the structure's full size, so they are at least `SIZE`
/// bytes long (the compile-time layout asserts guarantee it).
pub(crate) trait Field: Sized {
    /// Bytes of the field.
    const SIZE: usize;
    /// Reads the field from the first `SIZE` bytes of `bytes`.
    fn decode(bytes: &[u8]) -> Self;
    /// Writes the field into the first `SIZE` bytes of `out`.
    fn encode(&self, out: &mut [u8]);
}

macro_rules! int_field {
    ($($t:ty),* $(,)?) => {
        $(
            impl Field for $t {
                const SIZE: usize = core::mem::size_of::<$t>();

                fn decode(bytes: &[u8]) -> Self {
                    let mut raw = [0u8; core::mem::size_of::<$t>()];
                    raw.copy_from_slice(&bytes[..Self::SIZE]);
                    <$t>::from_le_bytes(raw)
                }

                fn encode(&self, out: &mut [u8]) {
                    out[..Self::SIZE].copy_from_slice(&self.to_le_bytes());
                }
            }
        )*
    };
}

int_field!(u8, u16, u32, u64, i8, i16, i32, i64);

impl<T: Field, const N: usize> Field for [T; N] {
    const SIZE: usize = N * T::SIZE;

    fn decode(bytes: &[u8]) -> Self {
        core::array::from_fn(|i| T::decode(&bytes[i * T::SIZE..]))
    }

    fn encode(&self, out: &mut [u8]) {
        for (i, item) in self.iter().enumerate() {
            item.encode(&mut out[i * T::SIZE..]);
        }
    }
}

/// Declares Xen structures: `#[repr(C)]`, public fields, derives `Clone`, `Copy`, `Debug`,
/// `PartialEq`, `Eq`, and generates the byte conversion described in the module docs.
///
/// ```text
/// xen_struct! {
///     /// `struct evtchn_bind_ipi`.
///     pub struct EvtchnBindIpi: 8 bytes {
///         /// IN: the vCPU.
///         pub vcpu @ 0: u32,
///         /// OUT: the new port.
///         pub port @ 4: EvtchnPort,
///     }
/// }
/// ```
///
/// Every `name @ offset: type` is asserted at compile time (`offset_of!`), as is the total
/// size (`size_of!`), so a field declared at the wrong place or with the wrong width does not
/// build. Extra attributes (e.g. `#[repr(align(8))]` for a union's raw bytes, or
/// `#[repr(packed)]`) are passed through.
macro_rules! xen_struct {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident: $size:literal bytes {
            $(
                $(#[$fmeta:meta])*
                pub $field:ident @ $off:literal: $ty:ty,
            )*
        }
    )*) => {$(
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
        }

        impl $name {
            /// Bytes of the structure (C's `sizeof`).
            pub const SIZE: usize = $size;

            /// Where each field lives (C's `offsetof` and `sizeof` of each member).
            pub const FIELDS: &'static [$crate::FieldInfo] = &[$(
                $crate::FieldInfo {
                    name: stringify!($field),
                    offset: $off,
                    size: <$ty as $crate::wire::Field>::SIZE,
                },
            )*];

            /// Decodes the structure from its little-endian bytes (padding is ignored).
            pub fn from_bytes(bytes: &[u8; $size]) -> Self {
                Self {
                    $( $field: <$ty as $crate::wire::Field>::decode(&bytes[$off..]), )*
                }
            }

            /// Encodes the structure as little-endian bytes (padding bytes are zero).
            pub fn to_bytes(&self) -> [u8; $size] {
                let mut bytes = [0u8; $size];
                $(
                    // A copy, so that packed structures are never referenced unaligned.
                    let value: $ty = self.$field;
                    $crate::wire::Field::encode(&value, &mut bytes[$off..]);
                )*
                bytes
            }
        }

        impl Default for $name {
            /// All fields zero.
            fn default() -> Self {
                Self::from_bytes(&[0; $size])
            }
        }

        impl $crate::wire::Field for $name {
            const SIZE: usize = $size;

            fn decode(bytes: &[u8]) -> Self {
                let mut raw = [0u8; $size];
                raw.copy_from_slice(&bytes[..$size]);
                Self::from_bytes(&raw)
            }

            fn encode(&self, out: &mut [u8]) {
                out[..$size].copy_from_slice(&self.to_bytes());
            }
        }

        impl $crate::XenStruct for $name {
            const SIZE: usize = $size;

            fn read_from(bytes: &[u8]) -> Result<Self, $crate::ShortBuffer> {
                match bytes.get(..$size) {
                    Some(b) => Ok(<Self as $crate::wire::Field>::decode(b)),
                    None => Err($crate::ShortBuffer { needed: $size, got: bytes.len() }),
                }
            }

            fn write_to(&self, out: &mut [u8]) -> Result<(), $crate::ShortBuffer> {
                let got = out.len();
                match out.get_mut(..$size) {
                    Some(o) => {
                        o.copy_from_slice(&self.to_bytes());
                        Ok(())
                    }
                    None => Err($crate::ShortBuffer { needed: $size, got }),
                }
            }
        }

        const _: () = {
            assert!(core::mem::size_of::<$name>() == $size);
            $(
                assert!(core::mem::offset_of!($name, $field) == $off);
                assert!(core::mem::size_of::<$ty>() == <$ty as $crate::wire::Field>::SIZE);
            )*
        };
    )*};
}

pub(crate) use xen_struct;
