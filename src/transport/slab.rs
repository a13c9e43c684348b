//! Slabs of connections addressed by typed keys: an index and the generation of the slot's
//! occupant. A completion carries the key of the connection its op was for; when the slot
//! has since been freed (and maybe reused), the generation no longer matches and the
//! completion is recognised as stale instead of touching the new occupant.
//!
//! Shared by the server's client and upstream connections and the load generator's.

use crate::driver::token::{GEN_MASK, Op, Token};

/// A slot and the generation of the occupant it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub index: u32,
    pub generation: u32,
}

impl Key {
    /// The token of an op on this key's occupant.
    pub fn token(self, op: Op) -> Token {
        Token::new(op, self.index, self.generation)
    }

    /// The key a completion's token names.
    pub fn of(t: Token) -> Key {
        Key {
            index: t.index,
            generation: t.generation,
        }
    }

    pub fn idx(self) -> usize {
        self.index as usize
    }
}

struct Slot<T> {
    generation: u32,
    live: bool,
    value: T,
}

/// Values in slots that are reused, never moved: an index stays valid for the life of the
/// slab. Storage grows on demand and is reserved up front when the caller knows its cap
/// (growth by doubling would copy every connection and leave the old copies as holes).
pub struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    live: usize,
}

impl<T> Slab<T> {
    pub fn with_capacity(n: usize) -> Slab<T> {
        Slab {
            slots: Vec::with_capacity(n),
            free: Vec::new(),
            live: 0,
        }
    }

    /// Occupies a free slot (reusing one, its value reset by `reset`) or a new one (made by
    /// `make`). Returns the new occupant's key.
    pub fn insert(&mut self, make: impl FnOnce() -> T, reset: impl FnOnce(&mut T)) -> Key {
        self.live += 1;
        if let Some(i) = self.free.pop() {
            let s = &mut self.slots[i as usize];
            s.live = true;
            reset(&mut s.value);
            return Key {
                index: i,
                generation: s.generation,
            };
        }
        self.slots.push(Slot {
            generation: 0,
            live: true,
            value: make(),
        });
        Key {
            index: (self.slots.len() - 1) as u32,
            generation: 0,
        }
    }

    /// The occupant `key` names, if it is still there.
    pub fn get(&self, key: Key) -> Option<&T> {
        self.slots
            .get(key.idx())
            .filter(|s| s.live && s.generation == key.generation)
            .map(|s| &s.value)
    }

    pub fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        self.slots
            .get_mut(key.idx())
            .filter(|s| s.live && s.generation == key.generation)
            .map(|s| &mut s.value)
    }

    /// Frees the slot: its generation moves on, so every key to the old occupant is stale.
    /// The value stays in place (its buffers may be reused) until the slot is occupied again.
    pub fn remove(&mut self, key: Key) -> bool {
        let Some(s) = self
            .slots
            .get_mut(key.idx())
            .filter(|s| s.live && s.generation == key.generation)
        else {
            return false;
        };
        s.live = false;
        s.generation = s.generation.wrapping_add(1) & GEN_MASK;
        self.free.push(key.index);
        self.live -= 1;
        true
    }

    /// Occupied slots.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Every live occupant, with its key.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live)
            .map(|(i, s)| {
                (
                    Key {
                        index: i as u32,
                        generation: s.generation,
                    },
                    &s.value,
                )
            })
    }

    /// Every value, live or not (for tearing down what a value still owns).
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().map(|s| &mut s.value)
    }
}

/// For code that holds a key it has just checked (or that the current event proved live):
/// a stale key here is a bug, and panics rather than touching another occupant.
impl<T> std::ops::Index<Key> for Slab<T> {
    type Output = T;
    fn index(&self, key: Key) -> &T {
        self.get(key).expect("stale slab key")
    }
}

impl<T> std::ops::IndexMut<Key> for Slab<T> {
    fn index_mut(&mut self, key: Key) -> &mut T {
        self.get_mut(key).expect("stale slab key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_to_freed_slots_go_stale() {
        let mut s: Slab<String> = Slab::with_capacity(4);
        let a = s.insert(|| "a".into(), |_| {});
        let b = s.insert(|| "b".into(), |_| {});
        assert_eq!((s.len(), s.get(a).map(String::as_str)), (2, Some("a")));
        assert!(s.remove(a));
        assert!(!s.remove(a), "twice");
        assert_eq!(s.get(a), None);
        // The slot is reused by a new occupant with a new generation.
        let c = s.insert(|| unreachable!(), |v| *v = "c".into());
        assert_eq!(c.index, a.index);
        assert_ne!(c.generation, a.generation);
        assert_eq!(s.get(a), None, "the old key still misses");
        assert_eq!(s.get(c).map(String::as_str), Some("c"));
        assert_eq!(s.get(b).map(String::as_str), Some("b"));
        assert_eq!(s.iter().count(), 2);
        let t = c.token(Op::Send);
        assert_eq!(Key::of(Token::unpack(t.pack()).unwrap()), c);
    }

    #[test]
    fn generations_wrap_inside_the_token() {
        let mut s: Slab<u8> = Slab::with_capacity(1);
        let mut k = s.insert(|| 0, |_| {});
        for _ in 0..(GEN_MASK as u64 + 3) {
            s.remove(k);
            k = s.insert(|| 0, |_| {});
        }
        assert!(k.generation <= GEN_MASK);
        assert_eq!(Key::of(Token::unpack(k.token(Op::Recv).pack()).unwrap()), k);
    }
}
