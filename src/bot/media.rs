//! The media a bot sends: VP8 frames from an IVF file and Opus packets from
//! an Ogg file, read once into memory and played in a loop.
//!
//! [`Track`] holds the items of one file with their media timestamps;
//! [`Cursor`] walks a track in real time for one receiver (each peer gets its
//! own cursor, so every peer starts on a keyframe). Time is an input: the
//! cursor is asked what is due `elapsed` after its start.

use std::sync::Arc;
use std::time::Duration;

/// The default video: VP8, 320x240, 15 fps, 6 s (scripts/gen-bot-fixtures.sh).
pub static DEFAULT_VIDEO: &[u8] = include_bytes!("../../fixtures/bot/video.ivf");
/// The default audio: Opus in Ogg, 20 ms packets, 6 s.
pub static DEFAULT_AUDIO: &[u8] = include_bytes!("../../fixtures/bot/audio.ogg");

/// RTP clock of video (VP8).
pub const VIDEO_CLOCK: u64 = 90_000;
/// RTP clock of Opus.
pub const AUDIO_CLOCK: u64 = 48_000;

/// A file the bot cannot play.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// Not a usable IVF file.
    #[error("not a usable IVF file: {0}")]
    Ivf(String),
    /// Not a usable Ogg Opus file.
    #[error("not a usable Ogg Opus file: {0}")]
    Ogg(String),
}

/// One frame or packet and when it plays, relative to the start of the loop.
#[derive(Debug, Clone)]
pub struct Item {
    /// The encoded bytes (one VP8 frame or one Opus packet).
    pub data: Arc<[u8]>,
    /// Offset from the start of the loop, in RTP clock ticks.
    pub ticks: u64,
    /// For video: a VP8 keyframe.
    pub keyframe: bool,
}

/// A looping sequence of timed items.
#[derive(Debug, Clone)]
pub struct Track {
    items: Vec<Item>,
    /// RTP clock rate.
    clock: u64,
    /// Length of one loop in clock ticks (the last item's end).
    period: u64,
}

impl Track {
    /// The items of one loop.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// RTP clock rate.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// Length of one loop.
    pub fn period(&self) -> Duration {
        ticks_to_duration(self.period, self.clock)
    }

    /// Mean items per second (frames per second for video).
    pub fn rate(&self) -> f64 {
        self.items.len() as f64 / self.period().as_secs_f64()
    }
}

pub(crate) fn ticks_to_duration(ticks: u64, clock: u64) -> Duration {
    Duration::from_nanos((ticks as u128 * 1_000_000_000 / clock as u128) as u64)
}

fn duration_to_ticks(d: Duration, clock: u64) -> u64 {
    (d.as_nanos() * clock as u128 / 1_000_000_000) as u64
}

/// Where one receiver is in a track.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Next item index.
    index: usize,
    /// Completed loops.
    lap: u64,
}

impl Cursor {
    /// RTP time (clock ticks since the cursor's start) of the next item.
    pub fn next_ticks(&self, track: &Track) -> u64 {
        self.lap * track.period + track.items[self.index].ticks
    }

    /// When the next item is due, relative to the cursor's start.
    pub fn next_due(&self, track: &Track) -> Duration {
        ticks_to_duration(self.next_ticks(track), track.clock)
    }

    /// The next item if it is due `elapsed` after the start, with its RTP
    /// time; advances past it.
    pub fn take_due<'t>(&mut self, track: &'t Track, elapsed: Duration) -> Option<(&'t Item, u64)> {
        let ticks = self.next_ticks(track);
        if ticks > duration_to_ticks(elapsed, track.clock) {
            return None;
        }
        let item = &track.items[self.index];
        self.index += 1;
        if self.index == track.items.len() {
            self.index = 0;
            self.lap += 1;
        }
        Some((item, ticks))
    }
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64le(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads a VP8 IVF file (32-byte header `DKIF`, then frames with a 12-byte
/// header: size, 64-bit pts in the file's timebase).
pub fn parse_ivf(bytes: &[u8]) -> Result<Track, MediaError> {
    let bad = |s: &str| MediaError::Ivf(s.to_owned());
    if bytes.len() < 32 || &bytes[0..4] != b"DKIF" {
        return Err(bad("no DKIF header"));
    }
    let header_len = u16le(bytes, 6) as usize;
    if header_len < 32 || header_len > bytes.len() {
        return Err(bad("bad header length"));
    }
    if &bytes[8..12] != b"VP80" {
        return Err(MediaError::Ivf(format!(
            "codec {:?}, expected VP8 (VP80)",
            String::from_utf8_lossy(&bytes[8..12])
        )));
    }
    let rate = u32le(bytes, 16) as u64;
    let scale = u32le(bytes, 20) as u64;
    if rate == 0 || scale == 0 {
        return Err(bad("zero timebase"));
    }
    // pts counts `scale / rate` seconds.
    let to_ticks = |pts: u64| pts * scale * VIDEO_CLOCK / rate;
    let mut items = Vec::new();
    let mut at = header_len;
    let mut first_pts = None;
    while at < bytes.len() {
        if at + 12 > bytes.len() {
            return Err(bad("truncated frame header"));
        }
        let size = u32le(bytes, at) as usize;
        let pts = u64le(bytes, at + 4);
        at += 12;
        if size == 0 || at + size > bytes.len() {
            return Err(bad("truncated frame"));
        }
        let data = &bytes[at..at + size];
        at += size;
        let base = *first_pts.get_or_insert(pts);
        let ticks = to_ticks(
            pts.checked_sub(base)
                .ok_or_else(|| bad("pts goes backwards"))?,
        );
        if items.last().is_some_and(|l: &Item| l.ticks >= ticks) {
            return Err(bad("pts not increasing"));
        }
        items.push(Item {
            data: data.into(),
            ticks,
            // VP8 frame tag: bit 0 of the first byte is 0 on a keyframe.
            keyframe: data[0] & 1 == 0,
        });
    }
    let Some(last) = items.last() else {
        return Err(bad("no frames"));
    };
    if !items[0].keyframe {
        return Err(bad("the first frame is not a keyframe"));
    }
    // The last frame lasts as long as the mean frame before it (or one pts unit).
    let frame = if items.len() > 1 {
        last.ticks / (items.len() as u64 - 1)
    } else {
        to_ticks(1)
    };
    let period = last.ticks + frame.max(1);
    Ok(Track {
        items,
        clock: VIDEO_CLOCK,
        period,
    })
}

/// Splits an Ogg stream into packets (of the first logical stream).
pub fn ogg_packets(bytes: &[u8]) -> Result<Vec<Vec<u8>>, MediaError> {
    let bad = |s: &str| MediaError::Ogg(s.to_owned());
    let mut packets = Vec::new();
    let mut partial: Vec<u8> = Vec::new();
    let mut serial = None;
    let mut at = 0;
    while at < bytes.len() {
        if at + 27 > bytes.len() || &bytes[at..at + 4] != b"OggS" {
            return Err(bad("no OggS page header"));
        }
        let page_serial = u32le(bytes, at + 14);
        let nsegs = bytes[at + 26] as usize;
        let table = at + 27;
        if table + nsegs > bytes.len() {
            return Err(bad("truncated segment table"));
        }
        let lacing = &bytes[table..table + nsegs];
        let mut data = table + nsegs;
        let total: usize = lacing.iter().map(|&l| l as usize).sum();
        if data + total > bytes.len() {
            return Err(bad("truncated page"));
        }
        let ours = *serial.get_or_insert(page_serial) == page_serial;
        for &len in lacing {
            if ours {
                partial.extend_from_slice(&bytes[data..data + len as usize]);
                if len < 255 {
                    packets.push(std::mem::take(&mut partial));
                }
            }
            data += len as usize;
        }
        at = data;
    }
    Ok(packets)
}

/// Samples (at 48 kHz) in one Opus packet, from its TOC byte (RFC 6716 §3.1).
pub fn opus_packet_samples(packet: &[u8]) -> Option<u64> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    // Frame length in 1/400 s units (2.5 ms = 120 samples).
    let frame_120 = match config {
        0..=11 => [4, 8, 16, 24][(config % 4) as usize],
        12..=15 => [4, 8][(config % 2) as usize],
        _ => [1, 2, 4, 8][(config % 4) as usize],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => (*packet.get(1)? & 0x3f) as u64,
    };
    if frames == 0 {
        return None;
    }
    Some(frame_120 * 120 * frames)
}

/// Reads an Ogg Opus file: checks `OpusHead`, skips `OpusTags`, and times
/// each audio packet by its TOC.
pub fn parse_ogg_opus(bytes: &[u8]) -> Result<Track, MediaError> {
    let packets = ogg_packets(bytes)?;
    let mut it = packets.into_iter();
    match it.next() {
        Some(h) if h.starts_with(b"OpusHead") => {}
        _ => return Err(MediaError::Ogg("no OpusHead: not Opus".into())),
    }
    match it.next() {
        Some(t) if t.starts_with(b"OpusTags") => {}
        _ => return Err(MediaError::Ogg("no OpusTags".into())),
    }
    let mut items = Vec::new();
    let mut ticks = 0;
    for p in it {
        if p.is_empty() {
            continue;
        }
        let samples = opus_packet_samples(&p)
            .ok_or_else(|| MediaError::Ogg("an Opus packet with a bad TOC".into()))?;
        items.push(Item {
            data: p.into(),
            ticks,
            keyframe: true,
        });
        ticks += samples;
    }
    if items.is_empty() {
        return Err(MediaError::Ogg("no audio packets".into()));
    }
    Ok(Track {
        items,
        clock: AUDIO_CLOCK,
        period: ticks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ivf(frames: &[(&[u8], u64)]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"DKIF");
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&32u16.to_le_bytes());
        b.extend_from_slice(b"VP80");
        b.extend_from_slice(&320u16.to_le_bytes());
        b.extend_from_slice(&240u16.to_le_bytes());
        b.extend_from_slice(&30u32.to_le_bytes()); // rate
        b.extend_from_slice(&1u32.to_le_bytes()); // scale
        b.extend_from_slice(&(frames.len() as u32).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        for (data, pts) in frames {
            b.extend_from_slice(&(data.len() as u32).to_le_bytes());
            b.extend_from_slice(&pts.to_le_bytes());
            b.extend_from_slice(data);
        }
        b
    }

    #[test]
    fn ivf_frames_timing_and_keyframes() {
        let t = parse_ivf(&ivf(&[(&[0x10, 1, 2], 0), (&[0x11, 3], 1), (&[0x11], 2)])).unwrap();
        assert_eq!(t.items().len(), 3);
        assert_eq!(t.items()[1].ticks, 3000); // 1/30 s at 90 kHz
        assert!(t.items()[0].keyframe && !t.items()[1].keyframe);
        assert_eq!(&*t.items()[0].data, &[0x10, 1, 2]);
        assert_eq!(t.period(), Duration::from_millis(100));
        assert!((t.rate() - 30.0).abs() < 1e-9);
    }

    #[test]
    fn ivf_refusals() {
        assert!(parse_ivf(b"RIFF....").is_err());
        let mut vp9 = ivf(&[(&[0], 0)]);
        vp9[8..12].copy_from_slice(b"VP90");
        assert!(parse_ivf(&vp9).unwrap_err().to_string().contains("VP8"));
        let mut cut = ivf(&[(&[0, 1, 2, 3], 0)]);
        cut.truncate(cut.len() - 1);
        assert!(parse_ivf(&cut).is_err());
        assert!(parse_ivf(&ivf(&[])).is_err());
        assert!(
            parse_ivf(&ivf(&[(&[1], 0)])).is_err(),
            "must start on a keyframe"
        );
        assert!(parse_ivf(&ivf(&[(&[0], 1), (&[1], 1)])).is_err());
    }

    fn page(serial: u32, packets: &[&[u8]], continued_tail: bool) -> Vec<u8> {
        let mut lacing = Vec::new();
        let mut body = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            let mut n = p.len();
            while n >= 255 {
                lacing.push(255u8);
                n -= 255;
            }
            let last = i == packets.len() - 1;
            if !(last && continued_tail) {
                lacing.push(n as u8);
            } else {
                assert_eq!(n, 0, "a continued tail must be a multiple of 255 bytes");
            }
            body.extend_from_slice(p);
        }
        let mut b = b"OggS".to_vec();
        b.push(0); // version
        b.push(0); // flags
        b.extend_from_slice(&0u64.to_le_bytes());
        b.extend_from_slice(&serial.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes()); // seq
        b.extend_from_slice(&0u32.to_le_bytes()); // crc (not checked)
        b.push(lacing.len() as u8);
        b.extend_from_slice(&lacing);
        b.extend_from_slice(&body);
        b
    }

    #[test]
    fn ogg_packets_across_pages_and_streams() {
        let long = vec![7u8; 255];
        let mut file = page(1, &[b"OpusHead....", b"OpusTags"], false);
        file.extend(page(2, &[b"other stream"], false));
        file.extend(page(1, &[&long], true));
        file.extend(page(1, &[b"end"], false));
        let p = ogg_packets(&file).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[2].len(), 258);
        assert_eq!(&p[2][255..], b"end");
        assert!(ogg_packets(b"OggS").is_err());
        assert!(ogg_packets(&file[..file.len() - 1]).is_err());
    }

    #[test]
    fn opus_toc_durations() {
        // config 31 (CELT 20 ms), one frame.
        assert_eq!(opus_packet_samples(&[31 << 3]), Some(960));
        // config 1 (SILK 20 ms), two frames (code 1).
        assert_eq!(opus_packet_samples(&[(1 << 3) | 1]), Some(1920));
        // config 16 (CELT 2.5 ms), code 3 with 4 frames.
        assert_eq!(opus_packet_samples(&[(16 << 3) | 3, 4]), Some(480));
        // config 13 (hybrid 20 ms).
        assert_eq!(opus_packet_samples(&[13 << 3]), Some(960));
        assert_eq!(opus_packet_samples(&[]), None);
        assert_eq!(opus_packet_samples(&[3]), None);
    }

    #[test]
    fn ogg_opus_track() {
        let mut file = page(9, &[b"OpusHead\x01\x01", b"OpusTags"], false);
        file.extend(page(
            9,
            &[&[31 << 3, 1], &[31 << 3, 2], &[(1 << 3) | 1, 3]],
            false,
        ));
        let t = parse_ogg_opus(&file).unwrap();
        let ticks: Vec<u64> = t.items().iter().map(|i| i.ticks).collect();
        assert_eq!(ticks, [0, 960, 1920]);
        assert_eq!(t.period(), Duration::from_millis(80));
        let vorbis = page(9, &[b"\x01vorbis"], false);
        assert!(parse_ogg_opus(&vorbis).is_err());
    }

    #[test]
    fn cursor_paces_and_loops() {
        let t = parse_ivf(&ivf(&[(&[0], 0), (&[1], 1), (&[1], 2)])).unwrap();
        let mut c = Cursor::default();
        let ms = Duration::from_millis;
        assert_eq!(c.take_due(&t, ms(0)).map(|(_, ts)| ts), Some(0));
        assert!(c.take_due(&t, ms(30)).is_none());
        assert_eq!(c.next_due(&t), ms(33) + Duration::from_nanos(333_333));
        assert_eq!(c.take_due(&t, ms(34)).map(|(_, ts)| ts), Some(3000));
        assert_eq!(c.take_due(&t, ms(70)).map(|(_, ts)| ts), Some(6000));
        // Second lap: timestamps keep growing, the keyframe comes back.
        let (item, ts) = c.take_due(&t, ms(100)).unwrap();
        assert_eq!((ts, item.keyframe), (9000, true));
        // Behind schedule: everything due comes out at once, in order.
        let late: Vec<u64> =
            std::iter::from_fn(|| c.take_due(&t, ms(200)).map(|(_, ts)| ts)).collect();
        assert_eq!(late, [12000, 15000, 18000]);
    }

    #[test]
    fn embedded_fixtures_parse() {
        let v = parse_ivf(DEFAULT_VIDEO).unwrap();
        assert!(v.items().len() >= 30);
        assert!((v.rate() - 15.0).abs() < 0.5, "{}", v.rate());
        let a = parse_ogg_opus(DEFAULT_AUDIO).unwrap();
        assert!((a.rate() - 50.0).abs() < 1.0, "{}", a.rate());
        assert!(DEFAULT_VIDEO.len() + DEFAULT_AUDIO.len() <= 1 << 20);
    }
}
