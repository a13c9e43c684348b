//! HPACK's header tables (RFC 7541 section 2.3): the static table of Appendix A, and the
//! dynamic table each direction of a connection keeps, sized as the RFC counts (name +
//! value + 32 per entry) and evicting the oldest first. Entries live in one ring of
//! owned byte strings; an insert allocates, a lookup never does.

use std::collections::VecDeque;

/// RFC 7541 Appendix A, index 1..=61.
pub const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// What the RFC charges an entry beyond its octets.
pub const ENTRY_OVERHEAD: usize = 32;

struct Entry {
    /// Name then value, in one allocation.
    bytes: Box<[u8]>,
    name_len: usize,
}

/// One direction's dynamic table.
pub struct Dynamic {
    /// Newest first (index 62 is `entries[0]`).
    entries: VecDeque<Entry>,
    size: usize,
    max: usize,
}

impl Dynamic {
    pub fn new(max: usize) -> Dynamic {
        Dynamic {
            entries: VecDeque::new(),
            size: 0,
            max,
        }
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn max(&self) -> usize {
        self.max
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A new maximum size (a dynamic table size update): evicts down to it.
    pub fn resize(&mut self, max: usize) {
        self.max = max;
        self.evict_to(max);
    }

    fn evict_to(&mut self, room: usize) {
        while self.size > room {
            match self.entries.pop_back() {
                Some(e) => self.size -= e.bytes.len() + ENTRY_OVERHEAD,
                None => self.size = 0,
            }
        }
    }

    /// Adds an entry at the front, evicting what it needs; one larger than the whole table
    /// empties it and is not added (RFC 7541 section 4.4).
    pub fn insert(&mut self, name: &[u8], value: &[u8]) {
        let cost = name.len() + value.len() + ENTRY_OVERHEAD;
        if cost > self.max {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max - cost);
        let mut bytes = Vec::with_capacity(name.len() + value.len());
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(value);
        self.entries.push_front(Entry {
            bytes: bytes.into_boxed_slice(),
            name_len: name.len(),
        });
        self.size += cost;
    }

    /// Entry `i` of the dynamic table (0: the newest).
    fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let e = self.entries.get(i)?;
        Some(e.bytes.split_at(e.name_len))
    }
}

/// Index `i` (1-based) of the static table followed by `dynamic`.
pub fn lookup(dynamic: &Dynamic, i: usize) -> Option<(&[u8], &[u8])> {
    match i {
        0 => None,
        1..=61 => {
            let (n, v) = STATIC[i - 1];
            Some((n.as_bytes(), v.as_bytes()))
        }
        _ => dynamic.get(i - 62),
    }
}

/// The static table's index of (`name`, `value`), or of `name` alone: (index, whether the
/// value matched too).
pub fn find_static(name: &[u8], value: &[u8]) -> Option<(usize, bool)> {
    let mut by_name = None;
    for (i, (n, v)) in STATIC.iter().enumerate() {
        if n.as_bytes() == name {
            if v.as_bytes() == value {
                return Some((i + 1, true));
            }
            by_name.get_or_insert(i + 1);
        }
    }
    by_name.map(|i| (i, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_count_32_per_entry_and_evict_the_oldest() {
        let mut t = Dynamic::new(100);
        t.insert(b"a", b"bb"); // 35
        t.insert(b"c", b"dd"); // 35
        assert_eq!((t.len(), t.size()), (2, 70));
        t.insert(b"e", b"ff"); // 35: the oldest goes
        assert_eq!((t.len(), t.size()), (2, 70));
        assert_eq!(lookup(&t, 62), Some((&b"e"[..], &b"ff"[..])));
        assert_eq!(lookup(&t, 63), Some((&b"c"[..], &b"dd"[..])));
        assert_eq!(lookup(&t, 64), None);
        t.insert(&[b'x'; 80], b""); // 112 > 100: empties the table
        assert!(t.is_empty() && t.size() == 0);
        t.insert(b"a", b"bb");
        t.resize(10);
        assert!(t.is_empty());
    }

    #[test]
    fn static_lookups() {
        let t = Dynamic::new(0);
        assert_eq!(lookup(&t, 0), None);
        assert_eq!(lookup(&t, 2), Some((&b":method"[..], &b"GET"[..])));
        assert_eq!(lookup(&t, 61), Some((&b"www-authenticate"[..], &b""[..])));
        assert_eq!(find_static(b":status", b"200"), Some((8, true)));
        assert_eq!(find_static(b":status", b"201"), Some((8, false)));
        assert_eq!(
            find_static(b"content-type", b"text/html"),
            Some((31, false))
        );
        assert_eq!(find_static(b"x-nope", b""), None);
    }
}
