//! The Kubernetes channel protocol over a websocket
//! (`k8s.io/apiserver/pkg/util/wsstream`): every message belongs to one
//! numbered channel. Binary protocols send the channel number as the first
//! byte, then the data; base64 ones send a text message whose first
//! character is the channel's digit, then the data base64-encoded.
//! Which channels mean what is the subresource's business (port-forward:
//! data 2i and error 2i+1 per port; exec: stdin 0, stdout 1, ...).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use tokio_tungstenite::tungstenite::Message;

/// `v4.channel.k8s.io`: binary frames.
pub(crate) const V4_BINARY: &str = "v4.channel.k8s.io";
/// `v4.base64.channel.k8s.io`: text frames, base64 data.
pub(crate) const V4_BASE64: &str = "v4.base64.channel.k8s.io";

/// How a negotiated subprotocol frames the channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Binary,
    Base64,
}

/// One message of the channel protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    /// Data on a channel.
    Data(u8, Bytes),
    /// The peer closes the websocket.
    Close,
    /// Nothing for the channels (ping, pong, an empty message).
    Skip,
}

impl Framing {
    /// The framing of a subprotocol (the empty one, as the API server's
    /// default for port-forward, is binary).
    pub(crate) fn of(protocol: &str) -> Framing {
        if protocol.contains("base64") {
            Framing::Base64
        } else {
            Framing::Binary
        }
    }

    /// `data` on `channel`, as one websocket message.
    pub(crate) fn encode(self, channel: u8, data: &[u8]) -> Message {
        match self {
            Framing::Binary => {
                let mut bin = Vec::with_capacity(data.len() + 1);
                bin.push(channel);
                bin.extend_from_slice(data);
                Message::binary(bin)
            }
            Framing::Base64 => {
                // wsstream writes '0' + channel, past '9' for channel 10 and up.
                let digit = char::from(b'0'.saturating_add(channel));
                Message::text(format!("{digit}{}", STANDARD.encode(data)))
            }
        }
    }

    /// The channel and data of a message; an error for one the protocol does not allow.
    pub(crate) fn decode(self, message: Message) -> Result<Frame, String> {
        match (self, message) {
            (_, Message::Close(_)) => Ok(Frame::Close),
            (Framing::Binary, Message::Binary(mut bin)) => {
                if bin.is_empty() {
                    return Ok(Frame::Skip);
                }
                let channel = bin.split_to(1)[0];
                Ok(Frame::Data(channel, bin))
            }
            (Framing::Base64, Message::Text(text)) => {
                let text = text.as_str();
                let Some(digit) = text.chars().next() else {
                    return Ok(Frame::Skip);
                };
                let channel = u8::try_from(digit)
                    .ok()
                    .and_then(|c| c.checked_sub(b'0'))
                    .ok_or_else(|| format!("invalid channel {digit:?}"))?;
                let data = STANDARD
                    .decode(&text[digit.len_utf8()..])
                    .map_err(|e| format!("invalid base64 on channel {channel}: {e}"))?;
                Ok(Frame::Data(channel, Bytes::from(data)))
            }
            (_, Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => Ok(Frame::Skip),
            (Framing::Binary, Message::Text(_)) => {
                Err("text message on a binary channel protocol".into())
            }
            (Framing::Base64, Message::Binary(_)) => {
                Err("binary message on a base64 channel protocol".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_in_both_framings() {
        for framing in [Framing::Binary, Framing::Base64] {
            let msg = framing.encode(3, b"GET / HTTP/1.1\r\n");
            assert_eq!(
                framing.decode(msg),
                Ok(Frame::Data(3, Bytes::from_static(b"GET / HTTP/1.1\r\n")))
            );
        }
        // The port prefix of port-forward: two bytes, little-endian.
        let msg = Framing::Binary.encode(0, &15014u16.to_le_bytes());
        assert_eq!(msg.into_data().as_ref(), &[0, 0xa6, 0x3a]);
    }

    #[test]
    fn a_message_of_the_other_framing_is_refused() {
        assert!(Framing::Binary.decode(Message::text("0AAA")).is_err());
        assert!(Framing::Base64.decode(Message::binary(vec![0, 1])).is_err());
        assert!(Framing::Base64.decode(Message::text("!AAA")).is_err());
    }
}
