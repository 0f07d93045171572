//! Snapshots of the full render of every example, as `wukong render` prints it.

use wukong::cli::OutputFormat;
use wukong::commands::render::render_documents;
use wukong_render::{CniVersion, RenderOptions};

fn example(name: &str) -> String {
    std::fs::read_to_string(format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn every_example_renders_to_its_snapshot() {
    insta::glob!("../../../examples", "*.yaml", |path| {
        let input = std::fs::read_to_string(path).unwrap();
        let out = render_documents(&input, &RenderOptions::default(), OutputFormat::Yaml)
            .unwrap_or_else(|e| panic!("{} does not render: {e:?}", path.display()));
        insta::assert_snapshot!(out.text);
    });
}

#[test]
fn the_seed_example_without_multus_falls_back_to_the_pod_network() {
    let options = RenderOptions { multus: false, ..RenderOptions::default() };
    let out = render_documents(&example("web-server-01.yaml"), &options, OutputFormat::Yaml).unwrap();
    insta::assert_snapshot!(out.text);
}

#[test]
fn the_seed_example_with_cni_1_0_0_as_json() {
    let options = RenderOptions { cni_version: CniVersion::V1_0_0, ..RenderOptions::default() };
    let out = render_documents(&example("web-server-01.yaml"), &options, OutputFormat::Json).unwrap();
    insta::assert_snapshot!(out.text);
}
