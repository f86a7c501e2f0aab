//! Stories over a simulated network: str0m clients, the SFU, a fake clock.

mod common;

use std::time::Duration;

use common::*;
use huddle_sfu::{Layer, Pc, SfuOutput};
use str0m::media::MediaKind;

#[test]
fn up_offer_is_answered_and_connects() {
    let w = connected(&[(1, Publish::AudioVideo)]);
    assert!(w.client_ref(1).up_connected);
    assert!(w.outputs.contains(&SfuOutput::Connected {
        member: 1,
        pc: Pc::Up
    }));
    // Alone in the room: nothing to receive, so no down offer.
    assert!(w.client_ref(1).down_offers.is_empty());
    assert_eq!(w.sfu.room_members("r"), vec![1]);
}

#[test]
fn media_from_a_arrives_at_b() {
    let mut w = connected(&[(1, Publish::AudioVideo), (2, Publish::Nothing)]);
    assert_eq!(
        w.client_ref(2).down_offers.len(),
        1,
        "one offer carrying both of 1's tracks"
    );
    w.run(Duration::from_secs(1));
    let audio = w.frames_from(2, 1, MediaKind::Audio);
    let video = w.frames_from(2, 1, MediaKind::Video);
    assert!(audio.len() > 20, "audio frames: {}", audio.len());
    assert!(video.len() > 10, "video frames: {}", video.len());
    // Same bytes as sent.
    let a = &audio[0].data;
    assert_eq!(a[..2], [0xaa, 1]);
    assert!(video[0].keyframe, "forwarding starts on a keyframe");
    let v = &video[0].data;
    assert_eq!(v[1], 1);
    assert_eq!(v.len(), 150);
    assert_eq!(
        *v,
        video_payload(
            true,
            1,
            b'-',
            u64::from_be_bytes(v[3..11].try_into().unwrap())
        )
    );
    // Every PC was found by its ufrag, none by scanning.
    assert_eq!(w.sfu.stats().demux_scans, 0);
}

#[test]
fn third_member_gets_both_others_and_they_get_it() {
    let mut w = connected(&[(1, Publish::AudioVideo), (2, Publish::AudioVideo)]);
    w.join("r", 3, Publish::AudioVideo);
    w.run_until_connected();
    w.run(Duration::from_secs(1));
    assert_eq!(w.sfu.room_members("r"), vec![1, 2, 3]);
    // 3 publishers × 2 tracks × 2 subscribers each.
    assert_eq!(w.sfu.forwarded_tracks(), 12);
    for (sub, pubs) in [(3, [1, 2]), (1, [2, 3]), (2, [1, 3])] {
        for p in pubs {
            for kind in [MediaKind::Audio, MediaKind::Video] {
                let n = w.frames_from(sub, p, kind).len();
                assert!(n > 5, "{sub} got {n} {kind:?} frames from {p}");
            }
        }
        assert!(
            w.frames_from(sub, sub, MediaKind::Audio).is_empty(),
            "no echo to {sub}"
        );
    }
    // 3's first offer has all four tracks of 1 and 2, tagged with their stream ids.
    let offer = &w.client_ref(3).down_offers[0];
    assert_eq!(
        offer.matches("m=audio").count() + offer.matches("m=video").count(),
        4,
        "{offer}"
    );
    assert!(
        offer.contains("a=msid:m1 ") && offer.contains("a=msid:m2 "),
        "{offer}"
    );
}

#[test]
fn leaving_stops_the_tracks_elsewhere() {
    let mut w = connected(&[(1, Publish::AudioVideo), (2, Publish::AudioVideo)]);
    w.run(Duration::from_millis(500));
    let offers_before = w.client_ref(2).down_offers.len();
    w.sfu.leave(1, w.now);
    w.pump();
    assert_eq!(w.sfu.room_members("r"), vec![2]);
    let offers = &w.client_ref(2).down_offers;
    assert_eq!(offers.len(), offers_before + 1, "a renegotiation offer");
    let last = offers.last().unwrap();
    let stopped = last
        .lines()
        .filter(|l| l.starts_with("m=") && l.split(' ').nth(1) == Some("0"))
        .count();
    assert_eq!(stopped, 2, "both of 1's m-lines stopped (port 0):\n{last}");
    assert_eq!(w.sfu.forwarded_tracks(), 0);
    let before = w.frames_from(2, 1, MediaKind::Audio).len();
    w.client(1).online = false;
    w.run(Duration::from_millis(300));
    assert_eq!(w.frames_from(2, 1, MediaKind::Audio).len(), before);
    assert!(
        !w.outputs
            .iter()
            .any(|o| matches!(o, SfuOutput::Failed { .. }))
    );
    // Leaving twice, or an unknown member, is harmless.
    w.sfu.leave(1, w.now);
    w.sfu.leave(99, w.now);
    w.sfu.leave(2, w.now);
    assert_eq!(w.sfu.stats().rooms, 0);
}

#[test]
fn one_pending_offer_at_a_time_and_changes_batch() {
    let mut w = World::new(config());
    w.join("r", 2, Publish::Nothing);
    w.client(2).auto_answer = false;
    w.join("r", 1, Publish::AudioVideo);
    // Tracks open (str0m's MediaAdded) once the publisher has connected.
    w.run(Duration::from_millis(300));
    assert_eq!(w.client_ref(2).down_offers.len(), 1);
    w.join("r", 3, Publish::AudioVideo);
    w.join("r", 4, Publish::AudioVideo);
    w.run(Duration::from_millis(300));
    assert_eq!(
        w.client_ref(2).down_offers.len(),
        1,
        "no second offer while one is pending"
    );
    w.answer_down(2);
    assert_eq!(
        w.client_ref(2).down_offers.len(),
        2,
        "the batched changes follow the answer"
    );
    let second = w.client_ref(2).down_offers[1].clone();
    assert!(
        second.contains("a=msid:m3 ") && second.contains("a=msid:m4 "),
        "{second}"
    );
    w.answer_down(2);
    assert_eq!(w.client_ref(2).down_offers.len(), 2);
    assert!(matches!(
        w.sfu.down_answer(2, "v=0", w.now),
        Err(huddle_sfu::SfuError::NoPendingOffer(2))
    ));
}

#[test]
fn simulcast_forwards_the_chosen_layer_and_switches_on_keyframe() {
    let mut w = connected(&[(1, Publish::Simulcast), (2, Publish::Nothing)]);
    w.run(Duration::from_secs(1));
    let video = w.frames_from(2, 1, MediaKind::Video);
    assert!(video.len() > 10);
    let layers: String = video.iter().map(|r| layer_of(r) as char).collect();
    assert!(
        video.iter().all(|r| layer_of(r) == b'h'),
        "default is the high layer: {layers}"
    );

    // Ask for low: keyframe requested for l, switch happens on l's keyframe.
    let requests_before = w.client_ref(1).keyframe_requests.len();
    w.sfu.set_layer(2, 1, Layer::Low);
    let mark = w.client_ref(2).received.len();
    w.run(Duration::from_secs(1));
    let after: Vec<Received> = w.client_ref(2).received[mark..]
        .iter()
        .filter(|r| r.kind == MediaKind::Video)
        .cloned()
        .collect();
    let first_low = after
        .iter()
        .position(|r| layer_of(r) == b'l')
        .expect("switched to low");
    assert!(after[first_low].keyframe, "the switch lands on a keyframe");
    assert!(
        after[first_low..].iter().all(|r| layer_of(r) == b'l'),
        "only l after the switch"
    );
    assert!(
        after[..first_low].iter().all(|r| layer_of(r) == b'h'),
        "h until then"
    );
    let new_requests = &w.client_ref(1).keyframe_requests[requests_before..];
    assert!(
        new_requests
            .iter()
            .any(|(_, rid)| rid.as_deref() == Some("l")),
        "{new_requests:?}"
    );
    assert_eq!(w.sfu.stats().layer_switches, 1);

    // Mid, then off.
    w.sfu.set_layer(2, 1, Layer::Mid);
    w.run(Duration::from_millis(600));
    assert_eq!(
        w.client_ref(2)
            .received
            .iter()
            .rev()
            .find(|r| r.kind == MediaKind::Video)
            .map(layer_of),
        Some(b'm')
    );
    w.sfu.set_layer(2, 1, Layer::Off);
    w.run(Duration::from_millis(100));
    let video_before = w.frames_from(2, 1, MediaKind::Video).len();
    let audio_before = w.frames_from(2, 1, MediaKind::Audio).len();
    w.run(Duration::from_millis(500));
    assert_eq!(
        w.frames_from(2, 1, MediaKind::Video).len(),
        video_before,
        "Off forwards no video"
    );
    assert!(
        w.frames_from(2, 1, MediaKind::Audio).len() > audio_before + 10,
        "audio goes on"
    );
}

#[test]
fn big_rooms_default_to_the_low_layer() {
    let mut cfg = config();
    cfg.low_above = 1;
    let mut w = World::new(cfg);
    w.join("r", 1, Publish::Simulcast);
    w.join("r", 2, Publish::Nothing);
    w.run_until_connected();
    w.run(Duration::from_secs(1));
    let video = w.frames_from(2, 1, MediaKind::Video);
    assert!(video.len() > 10);
    assert!(video.iter().all(|r| layer_of(r) == b'l'));
}

#[test]
fn keyframe_requests_are_coalesced() {
    let mut w = World::new(config());
    w.join("r", 1, Publish::AudioVideo);
    for id in 2..=5 {
        w.join("r", id, Publish::Nothing);
    }
    w.run_until_connected();
    w.run(Duration::from_secs(1));
    let before = w.client_ref(1).keyframe_requests.len();
    // Every subscriber sends a PLI every 10 ms for 200 ms.
    for _ in 0..20 {
        for id in 2..=5 {
            w.client(id).send_pli();
        }
        w.run(Duration::from_millis(10));
    }
    w.run(Duration::from_millis(50));
    let got = w.client_ref(1).keyframe_requests.len() - before;
    assert!(
        (1..=1).contains(&got),
        "80 PLIs over 200 ms reach the publisher as {got}"
    );
    assert!(w.sfu.stats().keyframe_requests_coalesced > 0);
    // After the interval, a new request goes through.
    w.run(Duration::from_millis(500));
    w.client(2).send_pli();
    w.run(Duration::from_millis(100));
    assert_eq!(w.client_ref(1).keyframe_requests.len() - before, 2);
}

#[test]
fn unknown_datagrams_are_refused() {
    let mut w = connected(&[(1, Publish::AudioVideo)]);
    let stranger: std::net::SocketAddr = "203.0.113.9:1234".parse().unwrap();
    let now = w.now;
    // Garbage, empty, RTP-looking, DTLS-looking, and STUN with an unknown ufrag.
    assert!(!w.sfu.handle_datagram(now, stranger, SERVER, b"hello"));
    assert!(!w.sfu.handle_datagram(now, stranger, SERVER, &[]));
    let mut rtp = vec![0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 7];
    rtp.extend_from_slice(&[0; 40]);
    assert!(!w.sfu.handle_datagram(now, stranger, SERVER, &rtp));
    assert!(!w.sfu.handle_datagram(
        now,
        stranger,
        SERVER,
        &[22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]
    ));
    let mut stun = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
    stun.extend_from_slice(&[7; 12]);
    stun.extend_from_slice(&[0x00, 0x06, 0x00, 0x08]);
    stun.extend_from_slice(b"nope:abc");
    assert!(!w.sfu.handle_datagram(now, stranger, SERVER, &stun));
    assert_eq!(w.sfu.stats().packets_dropped, 5);
    // The member is unharmed.
    assert_eq!(w.sfu.room_members("r"), vec![1]);
}

#[test]
fn garbage_from_a_known_address_never_panics() {
    let mut w = connected(&[(1, Publish::AudioVideo), (2, Publish::Nothing)]);
    w.run(Duration::from_millis(200));
    let from = w.client_ref(1).up_addr;
    // A cheap xorshift so the test is deterministic.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..2000 {
        let len = (next() % 300) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Steer the first byte into each demultiplexing class in turn.
        if let Some(b) = data.first_mut() {
            *b = [0u8, 1, 20, 23, 128, 144, 200][i % 7];
        }
        w.sfu.handle_datagram(w.now, from, SERVER, &data);
    }
    // Real SRTP from member 1 with bytes flipped, and the same from strangers.
    let mut real = Vec::new();
    {
        let now = w.now;
        let c = w.client(1);
        let pt =
            c.up.codec_config()
                .find(|p| p.spec().codec == str0m::format::Codec::Vp8)
                .unwrap()
                .pt();
        let mid = c.video_mid.unwrap();
        for f in 0..20u64 {
            let t = str0m::media::MediaTime::new(f * 3000, str0m::media::Frequency::NINETY_KHZ);
            let w = c.up.writer(mid).unwrap();
            w.write(pt, now, t, video_payload(f == 0, 1, b'-', f))
                .unwrap();
            // Drain after each mutation; the transmits are kept, not delivered.
            for tick in [None, Some(now + Duration::from_millis(f))] {
                if let Some(t) = tick {
                    c.up.handle_input(str0m::Input::Timeout(t)).unwrap();
                }
                loop {
                    match c.up.poll_output().unwrap() {
                        str0m::Output::Transmit(t) => real.push(t.contents.to_vec()),
                        str0m::Output::Timeout(_) => break,
                        str0m::Output::Event(_) => {}
                    }
                }
            }
        }
    }
    assert!(!real.is_empty());
    for i in 0..2000usize {
        let mut data = real[i % real.len()].clone();
        for _ in 0..1 + next() % 3 {
            let at = (next() as usize) % data.len();
            data[at] ^= 1 << (next() % 8);
        }
        if next() % 4 == 0 {
            data.truncate((next() as usize) % (data.len() + 1));
        }
        let source = if i % 3 == 0 {
            std::net::SocketAddr::from(([198, 51, 100, (i % 250) as u8], 1000 + i as u16))
        } else {
            from
        };
        w.sfu.handle_datagram(w.now, source, SERVER, &data);
    }
    // Whatever happened to member 1, the SFU still works for the rest.
    while w.sfu.poll_output().is_some() {}
    w.run(Duration::from_millis(100));
    assert!(w.sfu.room_members("r").contains(&2));
}

#[test]
fn malformed_sdp_is_an_error() {
    use huddle_sfu::SfuError;
    let mut w = World::new(config());
    w.join("r", 1, Publish::Nothing);
    let now = w.now;
    assert!(matches!(
        w.sfu.up_offer(1, "garbage", now),
        Err(SfuError::Sdp(_))
    ));
    assert!(matches!(w.sfu.up_offer(1, "", now), Err(SfuError::Sdp(_))));
    assert!(matches!(
        w.sfu.up_offer(1, &"v=0\r\n".repeat(20_000), now),
        Err(SfuError::Sdp(_))
    ));
    assert!(matches!(
        w.sfu.up_offer(9, "v=0", now),
        Err(SfuError::UnknownMember(9))
    ));
    assert!(matches!(
        w.sfu.down_answer(1, "garbage", now),
        Err(SfuError::NoPendingOffer(1))
    ));
    // With an offer pending, a garbage answer errs and the offer stays pending.
    w.client(1).auto_answer = false;
    w.join("r", 2, Publish::AudioVideo);
    w.run(Duration::from_millis(300));
    assert_eq!(w.client_ref(1).down_offers.len(), 1);
    assert!(matches!(
        w.sfu.down_answer(1, "garbage", w.now),
        Err(SfuError::Sdp(_))
    ));
    w.answer_down(1);
    w.run(Duration::from_millis(300));
    assert!(!w.frames_from(1, 2, MediaKind::Audio).is_empty());
    // Candidates: valid and empty are fine, garbage is not.
    let now = w.now;
    assert!(
        w.sfu
            .candidate(
                1,
                Pc::Up,
                "candidate:1 1 udp 2130706431 192.168.1.1 40000 typ host",
                now
            )
            .is_ok()
    );
    assert!(w.sfu.candidate(1, Pc::Down, "", now).is_ok());
    assert!(matches!(
        w.sfu.candidate(1, Pc::Up, "candidate:zzz", now),
        Err(SfuError::Candidate(_))
    ));
    assert!(matches!(
        w.sfu.candidate(7, Pc::Up, "", now),
        Err(SfuError::UnknownMember(7))
    ));
    // Join validation.
    assert!(matches!(
        w.sfu.join("r", 1, "x", now),
        Err(SfuError::AlreadyJoined(1))
    ));
    assert!(matches!(
        w.sfu.join("r", 5, "bad id", now),
        Err(SfuError::InvalidStreamId(_))
    ));
    assert!(matches!(
        w.sfu.join("r", 5, "m1", now),
        Err(SfuError::StreamIdTaken(_))
    ));
    assert!(matches!(
        w.sfu.join("", 5, "m5", now),
        Err(SfuError::InvalidRoom)
    ));
}

#[test]
fn a_client_that_goes_silent_is_failed() {
    let mut w = connected(&[(1, Publish::AudioVideo), (2, Publish::Nothing)]);
    w.run(Duration::from_millis(200));
    w.client(1).online = false;
    let silent_at = w.now;
    // Coarse steps: no media, just timers.
    while !w
        .outputs
        .iter()
        .any(|o| matches!(o, SfuOutput::Failed { .. }))
    {
        assert!(w.now - silent_at < Duration::from_secs(60), "never failed");
        w.run_step(Duration::from_millis(100), Duration::from_millis(100));
    }
    let after = w.now - silent_at;
    // silence_timeout is 10 s (str0m's ICE-lite agent alone takes ~15 s,
    // plus the disconnect grace).
    assert!(
        after >= Duration::from_secs(10) && after < Duration::from_secs(11),
        "failed after {after:?}"
    );
    let failed: Vec<_> = w
        .outputs
        .iter()
        .filter(|o| matches!(o, SfuOutput::Failed { .. }))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(matches!(failed[0], SfuOutput::Failed { member: 1, .. }));
    assert_eq!(w.sfu.room_members("r"), vec![2], "already removed");
    assert_eq!(w.sfu.stats().members_failed, 1);
    // 2's copies of 1's tracks were stopped.
    let last = w.client_ref(2).down_offers.last().unwrap();
    assert!(
        last.lines()
            .any(|l| l.starts_with("m=") && l.split(' ').nth(1) == Some("0")),
        "{last}"
    );
    assert_eq!(w.sfu.forwarded_tracks(), 0);
}

#[test]
fn a_client_that_never_connects_is_failed() {
    let mut cfg = config();
    cfg.connect_timeout = Duration::from_secs(5);
    let mut w = World::new(cfg);
    w.join("r", 1, Publish::AudioVideo);
    w.client(1).online = false;
    w.run_step(Duration::from_secs(6), Duration::from_millis(100));
    assert!(
        w.outputs
            .iter()
            .any(|o| matches!(o, SfuOutput::Failed { member: 1, .. })),
        "{:?}",
        w.outputs
    );
    assert!(w.sfu.room_members("r").is_empty());
}

#[test]
fn speaker_follows_the_loudest_member() {
    let mut w = connected(&[(1, Publish::AudioVideo), (2, Publish::AudioVideo)]);
    w.run(Duration::from_millis(500));
    assert_eq!(w.sfu.speaker("r"), None, "silence elects nobody");
    w.client(1).audio_level = -20;
    w.run(Duration::from_secs(1));
    assert_eq!(w.sfu.speaker("r"), Some(1));
    w.client(1).audio_level = -127;
    w.client(2).audio_level = -15;
    w.run(Duration::from_secs(2));
    assert_eq!(w.sfu.speaker("r"), Some(2));
    let speakers: Vec<Option<u64>> = w
        .outputs
        .iter()
        .filter_map(|o| match o {
            SfuOutput::Speaker { room, member } if room == "r" => Some(*member),
            _ => None,
        })
        .collect();
    assert_eq!(speakers, vec![Some(1), Some(2)]);
    w.sfu.leave(2, w.now);
    assert_eq!(
        w.sfu.poll_output(),
        Some(SfuOutput::Speaker {
            room: "r".into(),
            member: None
        })
    );
}

#[test]
fn track_limit_refuses_joins_and_publishing() {
    use huddle_sfu::SfuError;
    let mut cfg = config();
    cfg.max_tracks = 3;
    let mut w = World::new(cfg);
    w.join("r", 1, Publish::AudioVideo);
    w.join("r", 2, Publish::Nothing);
    w.run_until_connected();
    assert_eq!(w.sfu.forwarded_tracks(), 2);
    // 3 would add two more forwarded tracks (1's audio and video).
    let err = w.sfu.join("r", 3, "m3", w.now).unwrap_err();
    assert!(
        matches!(
            err,
            SfuError::TrackLimit {
                current: 2,
                adding: 2,
                max: 3
            }
        ),
        "{err}"
    );
    // 2 publishing two tracks would add two (to 1).
    let mut rtc = str0m::Rtc::new(w.now);
    let mut api = rtc.sdp_api();
    api.add_media(
        MediaKind::Audio,
        str0m::media::Direction::SendOnly,
        None,
        None,
        None,
    );
    api.add_media(
        MediaKind::Video,
        str0m::media::Direction::SendOnly,
        None,
        None,
        None,
    );
    let (offer, _pending) = api.apply().unwrap();
    let err = w
        .sfu
        .up_offer(2, &offer.to_sdp_string(), w.now)
        .unwrap_err();
    assert!(matches!(err, SfuError::TrackLimit { .. }), "{err}");
    // Another room is counted against the same cap.
    assert!(w.sfu.join("s", 4, "m4", w.now).is_ok());
}

/// The publisher re-offers its up PC with `change`; returns what `change` returned.
fn reoffer<R>(w: &mut World, id: u64, change: impl FnOnce(&mut str0m::change::SdpApi) -> R) -> R {
    let now = w.now;
    let c = w.client(id);
    let mut api = c.up.sdp_api();
    let r = change(&mut api);
    let (offer, pending) = api.apply().expect("changes");
    let answer = w
        .sfu
        .up_offer(id, &offer.to_sdp_string(), now)
        .expect("answer");
    let answer = str0m::change::SdpAnswer::from_sdp_string(&answer).unwrap();
    w.client(id)
        .up
        .sdp_api()
        .accept_answer(pending, answer)
        .unwrap();
    w.pump();
    r
}

#[test]
fn publisher_renegotiation_adds_and_removes_tracks() {
    use str0m::media::Direction;
    let mut w = connected(&[(1, Publish::AudioVideo), (2, Publish::Nothing)]);
    w.run(Duration::from_millis(200));
    assert_eq!(w.sfu.forwarded_tracks(), 2);
    let offers = w.client_ref(2).down_offers.len();
    // A screen share.
    let screen = reoffer(&mut w, 1, |api| {
        api.add_media(
            MediaKind::Video,
            Direction::SendOnly,
            Some("m1".into()),
            None,
            None,
        )
    });
    w.run(Duration::from_millis(200));
    assert_eq!(w.sfu.forwarded_tracks(), 3);
    assert_eq!(w.client_ref(2).down_offers.len(), offers + 1);
    assert_eq!(
        w.client_ref(2)
            .down_offers
            .last()
            .unwrap()
            .matches("m=video")
            .count(),
        2
    );
    // Stopped again.
    reoffer(&mut w, 1, |api| api.stop_media(screen));
    w.run(Duration::from_millis(200));
    assert_eq!(w.sfu.forwarded_tracks(), 2);
    assert_eq!(w.client_ref(2).down_offers.len(), offers + 2);
    let last = w.client_ref(2).down_offers.last().unwrap();
    let stopped = last
        .lines()
        .filter(|l| l.starts_with("m=") && l.split(' ').nth(1) == Some("0"))
        .count();
    assert_eq!(stopped, 1, "{last}");
    // The other tracks still flow.
    let before = w.frames_from(2, 1, MediaKind::Video).len();
    w.run(Duration::from_millis(300));
    assert!(w.frames_from(2, 1, MediaKind::Video).len() > before);
}

#[test]
fn a_layer_that_stops_falls_back_and_comes_back() {
    let mut w = connected(&[(1, Publish::Simulcast), (2, Publish::Nothing)]);
    w.run(Duration::from_millis(500));
    let last_layer = |w: &World| w.frames_from(2, 1, MediaKind::Video).last().map(layer_of);
    assert_eq!(last_layer(&w), Some(b'h'));
    // The browser stops sending h: after layer_timeout, m takes over.
    w.client(1).paused = vec!["h"];
    w.run(Duration::from_millis(1600));
    assert_eq!(last_layer(&w), Some(b'm'));
    let video = w.frames_from(2, 1, MediaKind::Video);
    let first_m = video.iter().position(|r| layer_of(r) == b'm').unwrap();
    assert!(video[first_m].keyframe);
    // h comes back (on a keyframe, as after a browser resumes a layer).
    w.client(1).paused.clear();
    w.client(1).force_key.insert(Some("h".into()), true);
    w.run(Duration::from_millis(500));
    assert_eq!(last_layer(&w), Some(b'h'));
}

#[test]
fn a_low_bandwidth_estimate_caps_the_layer() {
    let mut cfg = config();
    // 85% of 100 kbit/s fits l (~35 kbit/s here) but not m (~90) or h (~200).
    cfg.initial_bitrate_bps = 100_000;
    let mut w = World::new(cfg);
    w.join("r", 1, Publish::Simulcast);
    w.join("r", 2, Publish::Nothing);
    w.run_until_connected();
    w.run(Duration::from_secs(2));
    let layers: String = w
        .frames_from(2, 1, MediaKind::Video)
        .iter()
        .map(|r| layer_of(r) as char)
        .collect();
    assert!(layers.len() > 20, "{layers}");
    // From the first frame on (the starting estimate counts before the
    // first report), and up as the estimate grows, never to h in 2 s.
    assert!(layers.starts_with("lll"), "{layers}");
    assert!(!layers.contains('h'), "{layers}");
    // Only upwards (l… then m…), as the estimate grows.
    assert!(
        layers.trim_start_matches('l').chars().all(|c| c == 'm'),
        "{layers}"
    );
    assert!(layers.ends_with('m'), "the estimate ramps up: {layers}");
}

#[test]
fn datagrams_to_an_unspecified_address_are_mapped_to_the_advertised_one() {
    let mut w = World::new(config());
    // As from a socket bound to 0.0.0.0:5000 (recv_from gives no destination).
    w.seen_destination = Some("0.0.0.0:5000".parse().unwrap());
    w.join("r", 1, Publish::AudioVideo);
    w.join("r", 2, Publish::Nothing);
    w.run_until_connected();
    w.run(Duration::from_millis(500));
    assert!(!w.frames_from(2, 1, MediaKind::Video).is_empty());
}

#[test]
fn a_chrome_simulcast_offer_is_answered() {
    let mut w = World::new(config());
    w.sfu.join("r", 17, "m17", w.now).unwrap();
    let offer = include_str!("data/chrome-simulcast-offer.sdp").replace('\n', "\r\n");
    let answer = w.sfu.up_offer(17, &offer, w.now).expect("answer");
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(answer.contains("a=simulcast:recv l;m;h"), "{answer}");
    for rid in ["l", "m", "h"] {
        assert!(answer.contains(&format!("a=rid:{rid} recv")), "{answer}");
    }
    assert!(answer.contains("a=recvonly"), "{answer}");
    assert!(
        answer.contains("opus/48000/2") && answer.contains("VP8/90000"),
        "{answer}"
    );
    assert!(
        answer.contains("a=candidate:") && answer.contains("10.0.0.1 5000 typ host"),
        "{answer}"
    );
}

#[test]
fn a_late_joiner_sees_video_soon_after_connecting() {
    let mut w = connected(&[(1, Publish::AudioVideo), (2, Publish::Nothing)]);
    // Long enough that the publisher's only unrequested keyframe is history.
    w.run(Duration::from_secs(2));
    w.join("r", 3, Publish::Nothing);
    w.run_until_connected();
    w.run(Duration::from_millis(500));
    let connected = w.client_ref(3).down_connected_at.unwrap();
    let first = &w.frames_from(3, 1, MediaKind::Video)[0];
    assert!(first.keyframe);
    let ttff = first.at - connected;
    // One keyframe request and the next frame (35 ms apart here).
    assert!(
        ttff < Duration::from_millis(150),
        "first frame {ttff:?} after connecting"
    );
}

#[test]
fn a_subscribers_pli_reaches_the_layer_it_gets() {
    let mut w = World::new(config());
    w.join("r", 1, Publish::Simulcast);
    w.join("r", 2, Publish::Nothing);
    w.sfu.set_layer(2, 1, Layer::Mid);
    w.run_until_connected();
    w.run(Duration::from_secs(1));
    assert_eq!(
        w.frames_from(2, 1, MediaKind::Video).last().map(layer_of),
        Some(b'm')
    );
    let before = w.client_ref(1).keyframe_requests.len();
    w.client(2).send_pli();
    w.run(Duration::from_millis(100));
    let requests = &w.client_ref(1).keyframe_requests[before..];
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].1.as_deref(), Some("m"));
}

#[test]
fn stopped_down_m_lines_are_not_reused() {
    // A str0m limitation this crate inherits (see README): documents it.
    let mut w = World::new(config());
    w.join("r", 2, Publish::Nothing);
    for round in 0..2 {
        let id = 10 + round;
        w.join("r", id, Publish::AudioVideo);
        w.run_until_connected();
        w.run(Duration::from_millis(100));
        w.sfu.leave(id, w.now);
        w.client(id).online = false;
        w.pump();
    }
    let last = w.client_ref(2).down_offers.last().unwrap();
    let m_lines: Vec<&str> = last.lines().filter(|l| l.starts_with("m=")).collect();
    assert_eq!(m_lines.len(), 4, "{last}");
    assert!(
        m_lines.iter().all(|l| l.split(' ').nth(1) == Some("0")),
        "{last}"
    );
}

#[test]
fn mangled_offers_never_panic() {
    let mut w = World::new(config());
    let lines: Vec<&str> = include_str!("data/chrome-simulcast-offer.sdp")
        .lines()
        .collect();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut answered = 0;
    for id in 0..40u64 {
        let mut mangled: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        for _ in 0..1 + next() % 4 {
            let i = (next() as usize) % mangled.len();
            match next() % 4 {
                0 => {
                    mangled.remove(i);
                }
                1 => {
                    let cut = (next() as usize) % (mangled[i].len() + 1);
                    mangled[i].truncate(cut);
                }
                2 => {
                    let j = (next() as usize) % mangled.len();
                    mangled.swap(i, j);
                }
                _ => mangled[i] = mangled[i].replace(|c: char| c.is_ascii_digit(), "9"),
            }
        }
        let sdp = mangled.join("\r\n") + "\r\n";
        w.sfu.join("r", id, &format!("m{id}"), w.now).unwrap();
        if w.sfu.up_offer(id, &sdp, w.now).is_ok() {
            answered += 1;
        }
        w.sfu.leave(id, w.now);
    }
    // Some mangling is harmless, some is fatal; neither panics.
    assert!(answered > 0 && answered < 40, "answered {answered}");
}

#[test]
fn publishing_too_many_tracks_is_refused() {
    use huddle_sfu::SfuError;
    let mut w = World::new(config());
    w.sfu.join("r", 1, "m1", w.now).unwrap();
    let mut rtc = str0m::Rtc::new(w.now);
    let mut api = rtc.sdp_api();
    for _ in 0..9 {
        api.add_media(
            MediaKind::Audio,
            str0m::media::Direction::SendOnly,
            None,
            None,
            None,
        );
    }
    let (offer, _pending) = api.apply().unwrap();
    let err = w
        .sfu
        .up_offer(1, &offer.to_sdp_string(), w.now)
        .unwrap_err();
    assert!(
        matches!(err, SfuError::PublishLimit { offered: 9, max: 8 }),
        "{err}"
    );
}

#[test]
fn five_publishers_all_see_each_other() {
    let mut w = World::new(config());
    for id in 1..=5 {
        w.join("big", id, Publish::Simulcast);
    }
    w.run_until_connected();
    w.run(Duration::from_millis(400));
    assert_eq!(w.sfu.forwarded_tracks(), 5 * 2 * 4);
    for sub in 1..=5 {
        for publisher in (1..=5).filter(|p| *p != sub) {
            let video = w.frames_from(sub, publisher, MediaKind::Video);
            // ~11 frames in 400 ms at ~28.6 fps.
            assert!(
                video.len() >= 8,
                "{sub} got {} frames of {publisher}",
                video.len()
            );
            assert!(video.iter().all(|r| r.data[1] == publisher as u8));
            assert!(w.frames_from(sub, publisher, MediaKind::Audio).len() >= 15);
        }
    }
    let stats = w.sfu.stats();
    assert_eq!((stats.members, stats.rooms), (5, 1));
    assert!(stats.frames_out > 2 * stats.frames_in, "fan-out: {stats:?}");
}

#[test]
fn audio_top_k_forwards_only_the_loudest() {
    let mut cfg = config();
    cfg.audio_top_k = Some(2);
    let mut w = World::new(cfg);
    for (id, level) in [(1, -20), (2, -30), (3, -70), (4, -90)] {
        w.join("r", id, Publish::AudioVideo);
        w.client(id).audio_level = level;
    }
    w.join("r", 5, Publish::Nothing);
    w.run_until_connected();
    w.run(Duration::from_millis(500));
    let mark: Vec<usize> = (1..=4)
        .map(|p| w.frames_from(5, p, MediaKind::Audio).len())
        .collect();
    w.run(Duration::from_millis(500));
    let got: Vec<usize> = (1..=4)
        .map(|p| w.frames_from(5, p, MediaKind::Audio).len() - mark[p as usize - 1])
        .collect();
    assert!(got[0] >= 20 && got[1] >= 20, "the two loudest: {got:?}");
    assert_eq!(
        (got[2], got[3]),
        (0, 0),
        "the quiet ones are culled: {got:?}"
    );
    // Video is not affected.
    assert!(!w.frames_from(5, 4, MediaKind::Video).is_empty());
    assert!(w.sfu.stats().audio_frames_culled > 0);
    // The quiet one gets loud: it comes in.
    w.client(4).audio_level = -5;
    w.client(2).audio_level = -100;
    w.run(Duration::from_secs(1));
    let before = w.frames_from(5, 4, MediaKind::Audio).len();
    w.run(Duration::from_millis(300));
    assert!(w.frames_from(5, 4, MediaKind::Audio).len() > before + 5);
}

#[test]
fn racing_offers_cannot_pass_the_track_cap() {
    let mut cfg = config();
    cfg.max_tracks = 2;
    let mut w = World::new(cfg);
    // Both offer before either connects, so up_offer's check sees 0 tracks
    // forwarded each time; four would open without the hard cap.
    w.join("r", 1, Publish::AudioVideo);
    w.join("r", 2, Publish::AudioVideo);
    w.run(Duration::from_millis(500));
    assert_eq!(w.sfu.forwarded_tracks(), 2);
    assert_eq!(w.sfu.stats().tracks_refused, 2);
}
