//! Just enough DER to turn the private-key encodings Istio and openssl write
//! (PKCS#1 `RSA PRIVATE KEY`, SEC1 `EC PRIVATE KEY`) into PKCS#8, the only
//! form rcgen's ring backend reads.

/// DER object identifiers, encoded (tag + length + value).
const OID_RSA_ENCRYPTION: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
const NULL: &[u8] = &[0x05, 0x00];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_CONTEXT_0: u8 = 0xa0;

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 6);
    out.push(tag);
    push_len(&mut out, value.len());
    out.extend_from_slice(value);
    out
}

/// One parsed element: its tag, its value, and the whole encoding.
pub(crate) struct Element<'a> {
    pub tag: u8,
    pub value: &'a [u8],
    pub encoded: &'a [u8],
}

/// Reads one TLV from the front of `input`, returning it and the rest.
pub(crate) fn read(input: &[u8]) -> Option<(Element<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | b as usize;
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    let element = Element {
        tag,
        value: &rest[..len],
        encoded: &input[..header + len],
    };
    Some((element, &rest[len..]))
}

/// Wraps a PKCS#1 RSAPrivateKey in a PKCS#8 PrivateKeyInfo.
pub(crate) fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
    let algorithm = tlv(TAG_SEQUENCE, &[OID_RSA_ENCRYPTION, NULL].concat());
    let body = [
        tlv(TAG_INTEGER, &[0]),
        algorithm,
        tlv(TAG_OCTET_STRING, pkcs1),
    ]
    .concat();
    tlv(TAG_SEQUENCE, &body)
}

/// Wraps a SEC1 ECPrivateKey in a PKCS#8 PrivateKeyInfo; the curve comes
/// from the key's own `[0] parameters`, which Go and openssl always write.
pub(crate) fn sec1_to_pkcs8(sec1: &[u8]) -> Option<Vec<u8>> {
    let (seq, _) = read(sec1)?;
    if seq.tag != TAG_SEQUENCE {
        return None;
    }
    let (_version, rest) = read(seq.value)?;
    let (_private, mut rest) = read(rest)?;
    let mut curve = None;
    while !rest.is_empty() {
        let (el, next) = read(rest)?;
        if el.tag == TAG_CONTEXT_0 {
            let (oid, _) = read(el.value)?;
            if oid.tag == TAG_OID {
                curve = Some(oid.encoded.to_vec());
            }
        }
        rest = next;
    }
    let algorithm = tlv(TAG_SEQUENCE, &[OID_EC_PUBLIC_KEY, &curve?].concat());
    let body = [
        tlv(TAG_INTEGER, &[0]),
        algorithm,
        tlv(TAG_OCTET_STRING, sec1),
    ]
    .concat();
    Some(tlv(TAG_SEQUENCE, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_round_trip() {
        let value = vec![7u8; 300];
        let encoded = tlv(TAG_OCTET_STRING, &value);
        assert_eq!(&encoded[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let (el, rest) = read(&encoded).unwrap();
        assert!(rest.is_empty());
        assert_eq!(el.value, &value[..]);
    }

    #[test]
    fn truncated_input_is_refused() {
        let encoded = tlv(TAG_OCTET_STRING, &[1, 2, 3]);
        assert!(read(&encoded[..3]).is_none());
        assert!(read(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
    }
}
