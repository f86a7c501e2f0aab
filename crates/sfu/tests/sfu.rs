//! Stories over a simulated network: str0m clients, the SFU, a fake clock.

mod common;

use std::time::Duration;

use common::*;
use huddle_sfu::{Pc, SfuOutput};
use str0m::media::MediaKind;

#[test]
fn up_offer_is_answered_and_connects() {
    let mut w = World::new(config());
    w.join("r", 1, Publish::AudioVideo);
    w.run_until_connected();
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
    let mut w = World::new(config());
    w.join("r", 1, Publish::AudioVideo);
    w.join("r", 2, Publish::Nothing);
    w.run_until_connected();
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
}
