//! A type map for per-connection data that layers hand to each other.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;

/// Typed values attached to a [`Connection`](crate::Connection), one per type, like
/// `http::Extensions`. A layer inserts what a later layer or the session service reads.
///
/// ```
/// use tower_mail::Extensions;
/// #[derive(Clone, Debug, PartialEq)]
/// struct Country(&'static str);
/// let mut ext = Extensions::new();
/// ext.insert(Country("NL"));
/// assert_eq!(ext.get::<Country>(), Some(&Country("NL")));
/// ```
#[derive(Default)]
pub struct Extensions {
    // Made on the first insert: most connections carry nothing, and an empty map would still
    // be 48 bytes (with its hasher's keys read per connection) moved through every layer.
    #[allow(
        clippy::box_collection,
        reason = "8 bytes in the connection instead of 48; the allocation happens only on use"
    )]
    map: Option<Box<HashMap<TypeId, Box<dyn Any + Send + Sync>>>>,
}

impl Extensions {
    /// An empty map.
    pub fn new() -> Extensions {
        Extensions::default()
    }

    /// Insert a value, returning the previous one of the same type.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) -> Option<T> {
        self.map
            .get_or_insert_default()
            .insert(TypeId::of::<T>(), Box::new(value))
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// The value of type `T`, if any.
    pub fn get<T: Send + Sync + 'static>(&self) -> Option<&T> {
        self.map.as_ref()?.get(&TypeId::of::<T>())?.downcast_ref()
    }

    /// The value of type `T`, mutably.
    pub fn get_mut<T: Send + Sync + 'static>(&mut self) -> Option<&mut T> {
        self.map
            .as_mut()?
            .get_mut(&TypeId::of::<T>())?
            .downcast_mut()
    }

    /// Remove and return the value of type `T`.
    pub fn remove<T: Send + Sync + 'static>(&mut self) -> Option<T> {
        self.map
            .as_mut()?
            .remove(&TypeId::of::<T>())
            .and_then(|old| old.downcast::<T>().ok().map(|b| *b))
    }

    /// How many values are stored.
    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |map| map.len())
    }

    /// Whether no values are stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Extensions({})", self.len())
    }
}
