//! xenstore messages: an `xsd_sockmsg` header ([`XsdSockmsg`]) followed by `len` bytes of
//! payload, usually NUL-terminated strings.

use alloc::vec::Vec;

use xen_abi::xs_wire::{XsdSockmsg, XENSTORE_PAYLOAD_MAX, XS_ERROR, XS_WATCH_EVENT};

/// Bytes of the message header (`sizeof(struct xsd_sockmsg)`).
pub const HEADER_SIZE: usize = XsdSockmsg::SIZE;

/// One xenstore message: a request, a reply, an error or a watch event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `XS_*` type.
    pub type_: u32,
    /// Request id (echoed in replies, 0 in watch events).
    pub req_id: u32,
    /// Transaction id (0: none).
    pub tx_id: u32,
    /// The payload (`len` bytes).
    pub payload: Vec<u8>,
}

/// Why bytes are not a well-formed message (see [`Message::parse`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Fewer than [`HEADER_SIZE`] bytes.
    ShortHeader,
    /// `len` is larger than `XENSTORE_PAYLOAD_MAX`. C xenstored treats this as a fatal
    /// protocol error (`XENSTORE_ERROR_PROTO`) for the connection.
    TooLong(u32),
    /// The buffer does not hold exactly header + `len` bytes.
    LengthMismatch {
        /// `len` from the header.
        len: u32,
        /// Payload bytes actually present.
        actual: usize,
    },
}

impl Message {
    /// A message with a raw payload.
    pub fn new(type_: u32, req_id: u32, tx_id: u32, payload: Vec<u8>) -> Message {
        Message { type_, req_id, tx_id, payload }
    }

    /// A message whose payload is `parts`, each followed by a NUL (`"a\0b\0"`).
    pub fn with_strings(type_: u32, req_id: u32, tx_id: u32, parts: &[&[u8]]) -> Message {
        let mut payload = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for part in parts {
            payload.extend_from_slice(part);
            payload.push(0);
        }
        Message::new(type_, req_id, tx_id, payload)
    }

    /// An `XS_ERROR` reply to `req` carrying `err`'s name.
    pub fn error(req_id: u32, tx_id: u32, err: crate::Error) -> Message {
        Message::with_strings(XS_ERROR, req_id, tx_id, &[err.name().as_bytes()])
    }

    /// An `XS_WATCH_EVENT` (`req_id` and `tx_id` 0) with payload `path\0token\0`.
    pub fn watch_event(path: &[u8], token: &[u8]) -> Message {
        Message::with_strings(XS_WATCH_EVENT, 0, 0, &[path, token])
    }

    /// The header for this message (`len` is the payload length, saturated).
    pub fn header(&self) -> XsdSockmsg {
        XsdSockmsg {
            type_: self.type_,
            req_id: self.req_id,
            tx_id: self.tx_id,
            len: u32::try_from(self.payload.len()).unwrap_or(u32::MAX),
        }
    }

    /// Header and payload as they go on the ring.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_SIZE + self.payload.len());
        out.extend_from_slice(&self.header().to_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Parses one complete message: exactly a header and `len` (at most
    /// `XENSTORE_PAYLOAD_MAX`) bytes of payload.
    pub fn parse(bytes: &[u8]) -> Result<Message, FrameError> {
        let hdr = parse_header(bytes).ok_or(FrameError::ShortHeader)?;
        if hdr.len as usize > XENSTORE_PAYLOAD_MAX {
            return Err(FrameError::TooLong(hdr.len));
        }
        let payload = &bytes[HEADER_SIZE..];
        if payload.len() != hdr.len as usize {
            return Err(FrameError::LengthMismatch { len: hdr.len, actual: payload.len() });
        }
        Ok(Message::new(hdr.type_, hdr.req_id, hdr.tx_id, payload.to_vec()))
    }

    /// The NUL-terminated strings of the payload, without their NULs (C xenstored's
    /// `get_strings`: bytes after the last NUL are ignored).
    pub fn strings(&self) -> Vec<&[u8]> {
        strings(&self.payload)
    }
}

/// The header at the start of `bytes`, if there are enough bytes.
pub fn parse_header(bytes: &[u8]) -> Option<XsdSockmsg> {
    let raw: &[u8; HEADER_SIZE] = bytes.get(..HEADER_SIZE)?.try_into().ok()?;
    Some(XsdSockmsg::from_bytes(raw))
}

/// For a byte stream read from a ring: the length of the first message in `buf` if it is
/// complete (`Ok(Some(n))`, the message is `buf[..n]`), `Ok(None)` if more bytes are needed,
/// or [`FrameError::TooLong`] if the header announces an oversized payload.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let Some(hdr) = parse_header(buf) else {
        return Ok(None);
    };
    if hdr.len as usize > XENSTORE_PAYLOAD_MAX {
        return Err(FrameError::TooLong(hdr.len));
    }
    let total = HEADER_SIZE + hdr.len as usize;
    Ok((buf.len() >= total).then_some(total))
}

/// The NUL-terminated strings of `payload` without their NULs; trailing bytes without a NUL
/// are ignored.
pub(crate) fn strings(payload: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = payload;
    while let Some(nul) = rest.iter().position(|&b| b == 0) {
        out.push(&rest[..nul]);
        rest = &rest[nul + 1..];
    }
    out
}

/// C xenstored's `onearg`: the payload must be exactly one string followed by its NUL.
pub(crate) fn onearg(payload: &[u8]) -> Option<&[u8]> {
    let (last, body) = payload.split_last()?;
    (*last == 0 && !body.contains(&0)).then_some(body)
}

/// Number of NUL bytes (`xenstore_count_strings`).
pub(crate) fn count_nuls(payload: &[u8]) -> usize {
    payload.iter().filter(|&&b| b == 0).count()
}
