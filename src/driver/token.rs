//! `user_data` packing: (op kind, slab index, generation).
//!
//! A CQE that arrives after its connection slot was freed and reused carries the old
//! generation, so the worker can recognise it and drop it without touching the new owner.

/// What an in-flight operation was for. Fits in 8 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    Accept = 1,
    Recv = 2,
    Send = 3,
    Close = 4,
    Cancel = 5,
    Wake = 6,
    Shutdown = 7,
    Log = 8,
    UpConnect = 9,
    UpRecv = 10,
    UpSend = 11,
}

impl Op {
    fn from_u8(v: u8) -> Option<Op> {
        Some(match v {
            1 => Op::Accept,
            2 => Op::Recv,
            3 => Op::Send,
            4 => Op::Close,
            5 => Op::Cancel,
            6 => Op::Wake,
            7 => Op::Shutdown,
            8 => Op::Log,
            9 => Op::UpConnect,
            10 => Op::UpRecv,
            11 => Op::UpSend,
            _ => return None,
        })
    }
}

/// A decoded `user_data`: 8 bits op, 24 bits generation, 32 bits index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub op: Op,
    pub generation: u32,
    pub index: u32,
}

pub const GEN_MASK: u32 = (1 << 24) - 1;

impl Token {
    pub fn new(op: Op, index: u32, generation: u32) -> Token {
        Token {
            op,
            generation: generation & GEN_MASK,
            index,
        }
    }

    pub fn pack(self) -> u64 {
        ((self.op as u64) << 56) | (((self.generation & GEN_MASK) as u64) << 32) | self.index as u64
    }

    pub fn unpack(v: u64) -> Option<Token> {
        Some(Token {
            op: Op::from_u8((v >> 56) as u8)?,
            generation: ((v >> 32) as u32) & GEN_MASK,
            index: v as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = Token::new(Op::Send, 0xdead_beef, 0x00ab_cdef);
        assert_eq!(Token::unpack(t.pack()), Some(t));
        // The generation wraps inside its 24 bits instead of spilling into the op.
        let t = Token::new(Op::Recv, 7, 0x0100_0001);
        assert_eq!(Token::unpack(t.pack()).unwrap().generation, 1);
        assert_eq!(Token::unpack(0), None);
    }
}
