//! The Check answer as it goes on the wire.
//!
//! An allow is the common answer, and building it as envoy-types structs
//! meant two `String`s per header (the name and the value), a map of four
//! metadata entries and their `String`s: half of a cache-hit check's
//! allocations (BENCHMARKS.md). So an allow is written here straight from the
//! decision into one buffer, in protobuf's wire format; a denial, rarer and
//! with a body, goes through the structs. Both decode to what the structs
//! say (tests: every allow shape is compared with the struct-built answer).

use envoy_types::ext_authz::v3::pb::CheckResponse;
use prost::{
    DecodeError, Message,
    bytes::{Buf, BufMut},
    encoding::{DecodeContext, WireType},
};

use crate::check::{DecisionId, HeaderText, Permit, UpstreamHeaders};

/// An encoded `CheckResponse`.
#[derive(Debug)]
pub struct Answer(Vec<u8>);

impl Answer {
    /// An answer built as envoy-types structs.
    pub fn message(response: &CheckResponse) -> Self {
        Self(response.encode_to_vec())
    }

    /// The allow for `permit`: OK, the upstream headers (each overwriting),
    /// the removals, and for a subject the dynamic metadata.
    pub fn allow(permit: &Permit, headers: &UpstreamHeaders, decision: DecisionId) -> Self {
        // The access log's fields (see `allowed` in `grpc.rs`): the ids are
        // formatted on the stack.
        let mut decision_buffer = [0; DecisionId::LEN];
        let decision_id = decision.encode(&mut decision_buffer);
        let who = permit.who();
        let name = who.map(|w| w.name());
        let id = who.map(|w| HeaderText::id(w.subject().id()));
        let all;
        let fields: &[(&str, &str)] = match (name.as_deref(), id.as_deref()) {
            (Some(name), Some(id)) => {
                all = [
                    ("decision_id", decision_id),
                    ("user_id", id),
                    ("login", name),
                ];
                &all
            }
            _ => &[("decision_id", decision_id)],
        };
        let ok = ok_response_len(headers);
        let len = 2 + delimited_len(ok) + delimited_len(struct_len(fields));
        let mut out = Vec::with_capacity(len);
        // status: google.rpc.Status with code OK, an empty message.
        key(&mut out, 1, LEN);
        out.push(0);
        {
            key(&mut out, 4, LEN);
            varint(&mut out, struct_len(fields) as u64);
            for (name, value) in fields {
                let entry = map_entry_len(name, value);
                key(&mut out, 1, LEN);
                varint(&mut out, entry as u64);
                string(&mut out, 1, name);
                key(&mut out, 2, LEN);
                varint(&mut out, delimited_len(value.len()) as u64);
                // string_value: a oneof member, written even when empty.
                key(&mut out, 3, LEN);
                varint(&mut out, value.len() as u64);
                out.extend_from_slice(value.as_bytes());
            }
        }
        // ok_response
        key(&mut out, 3, LEN);
        varint(&mut out, ok as u64);
        for (name, value) in &headers.set {
            let option = option_len(name, value);
            key(&mut out, 2, LEN);
            varint(&mut out, option as u64);
            key(&mut out, 1, LEN);
            varint(&mut out, header_len(name, value) as u64);
            string(&mut out, 1, name);
            string(&mut out, 2, value);
            // append = BoolValue(false): an empty message.
            key(&mut out, 2, LEN);
            out.push(0);
            // append_action = OVERWRITE_IF_EXISTS_OR_ADD
            key(&mut out, 3, VARINT);
            out.push(OVERWRITE_IF_EXISTS_OR_ADD);
        }
        for name in &headers.remove {
            string(&mut out, 5, name);
        }
        debug_assert_eq!(out.len(), len);
        Self(out)
    }

    #[cfg(test)]
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

const VARINT: u8 = 0;
const LEN: u8 = 2;
const OVERWRITE_IF_EXISTS_OR_ADD: u8 = 2;

/// Field numbers here are all below 16: a key is one byte.
fn key(out: &mut Vec<u8>, field: u8, wire_type: u8) {
    out.push(field << 3 | wire_type);
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_len(value: u64) -> usize {
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// A key, a length and `len` bytes.
fn delimited_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// proto3 leaves an empty string out.
fn string(out: &mut Vec<u8>, field: u8, value: &str) {
    if value.is_empty() {
        return;
    }
    key(out, field, LEN);
    varint(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

/// A string field's bytes: key, length and text (none when empty).
fn string_len(value: &str) -> usize {
    if value.is_empty() {
        0
    } else {
        delimited_len(value.len())
    }
}

fn header_len(name: &str, value: &str) -> usize {
    string_len(name) + string_len(value)
}

/// HeaderValueOption: the header, `append` (2 bytes), `append_action` (2).
fn option_len(name: &str, value: &str) -> usize {
    delimited_len(header_len(name, value)) + 2 + 2
}

fn ok_response_len(headers: &UpstreamHeaders) -> usize {
    let set: usize = headers
        .set
        .iter()
        .map(|(name, value)| delimited_len(option_len(name, value)))
        .sum();
    let remove: usize = headers.remove.iter().map(|n| string_len(n)).sum();
    set + remove
}

/// A `map<string, Value>` entry: the key, and a Value holding a string.
/// The Value is a oneof, present even when its string is empty.
fn map_entry_len(name: &str, value: &str) -> usize {
    string_len(name) + delimited_len(delimited_len(value.len()))
}

fn struct_len(fields: &[(&str, &str)]) -> usize {
    fields
        .iter()
        .map(|(name, value)| delimited_len(map_entry_len(name, value)))
        .sum()
}

/// Encode-only: tonic's codec needs a `Message`, and an answer is never
/// decoded here.
impl Message for Answer {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        buf.put_slice(&self.0);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        prost::encoding::skip_field(wire_type, tag, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests;
