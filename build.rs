// rust-embed does not notice new files under web/ in release builds by itself.
fn main() {
    println!("cargo:rerun-if-changed=web");
}
