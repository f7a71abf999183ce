//! A file's mime type as Appwrite's libmagic reports it, closely enough for the product: magic
//! bytes, then the extension, then a text sniff.

pub(super) fn extension(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, ext)| ext.to_lowercase())
        .unwrap_or_default()
}

/// The mime type from the content's magic bytes, then the extension, then a text sniff.
pub(super) fn detect_mime(name: &str, data: &[u8]) -> String {
    let magic: &[(&[u8], &str)] = &[
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"%PDF-", "application/pdf"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1f\x8b", "application/gzip"),
    ];
    if let Some((_, mime)) = magic.iter().find(|(m, _)| data.starts_with(m)) {
        return (*mime).to_owned();
    }
    if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        return "image/webp".to_owned();
    }
    let by_ext = match extension(name).as_str() {
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" => "text/javascript",
        "svg" => "image/svg+xml",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mp3" => "audio/mpeg",
        _ => "",
    };
    if !by_ext.is_empty() {
        return by_ext.to_owned();
    }
    // Like libmagic: text is UTF-8 without control bytes other than common whitespace.
    let head = &data[..data.len().min(8192)];
    let texty = head
        .iter()
        .all(|&b| b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b));
    // A cut multi-byte character at the 8 KiB boundary is still text.
    let utf8 = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() == 8192,
    };
    if texty && utf8 {
        "text/plain".to_owned()
    } else {
        "application/octet-stream".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_detection() {
        assert_eq!(detect_mime("a.bin", b"\x89PNG\r\n\x1a\nrest"), "image/png");
        assert_eq!(detect_mime("notes.txt", b"hello"), "text/plain");
        assert_eq!(detect_mime("x", &[0, 1, 2]), "application/octet-stream");
        assert_eq!(detect_mime("x.bin", &[7; 64]), "application/octet-stream");
        assert_eq!(detect_mime("x", "héllo\n".as_bytes()), "text/plain");
    }
}
