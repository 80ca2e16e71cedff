//! Regenerates `events/schema/event-v1.schema.json` from the Rust types.
fn main() -> std::io::Result<()> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/event-v1.schema.json");
    let text = serde_json::to_string_pretty(&roadsight_events::generated_schema())?;
    std::fs::write(&path, text + "\n")?;
    println!("wrote {}", path.display());
    Ok(())
}
