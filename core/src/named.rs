//! `named_enum!`: a counter enum with a stable snake_case name per value,
//! `ALL` in index order and `COUNT`, so every counter reaches the report
//! and the metrics by one loop and none can be forgotten. The worker's
//! [`crate::pipeline::Stat`] and [`crate::pipeline::DropReason`], control's
//! [`crate::runtime::ControlStat`] and the neighbour cache's
//! [`crate::neigh::NeighStat`] are made with it.

/// Defines a counter enum (see the module).
#[doc(hidden)]
#[macro_export]
macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($(#[doc = $doc:literal])* $v:ident => $s:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[doc = $doc])* $v,)* }
        impl $name {
            /// Every value, in index order.
            pub const ALL: &'static [$name] = &[$($name::$v,)*];
            /// How many values there are.
            pub const COUNT: usize = Self::ALL.len();
            /// The counter name (snake_case, stable: metrics use it).
            pub fn name(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
        }
    };
}
