//! A policy table is checked like every other configuration table: an unknown key (a typo such as
//! `hiden`) is an error naming it, for struct variants and for `just_in_time` alike, and the
//! documented keys still read.

use hdpo_policy::PolicySpec;

fn parse(text: &str) -> Result<PolicySpec, String> {
    toml::from_str::<PolicySpec>(text).map_err(|e| e.to_string())
}

#[test]
fn unknown_keys_in_a_policy_table_are_rejected() {
    let ok = parse(
        "kind = \"vanilla_one_store\"\nhidden = [4]\nactivation = \"elu\"\ninput_scale = 0.2",
    )
    .unwrap();
    assert_eq!(ok.kind(), "vanilla_one_store");
    // `input_scale` has a default
    parse("kind = \"vanilla_one_store\"\nhidden = [4]\nactivation = \"elu\"").unwrap();
    for (text, key) in [
        (
            "kind = \"vanilla_one_store\"\nhidden = [4]\nactivation = \"elu\"\nhiden = [4]",
            "hiden",
        ),
        (
            "kind = \"vanilla_one_store\"\nhidden = [4]\nactivation = \"elu\"\nlayers = 7",
            "layers",
        ),
        (
            "kind = \"base_stock\"\ninitial_level = 3\nlevel = 4",
            "level",
        ),
        (
            "kind = \"gnn\"\nwidth = 8\nhidden = [8]\ntransshipment = false\noutput_bias = 5\nround = 2",
            "round",
        ),
        ("kind = \"just_in_time\"\nhidden = [4]", "hidden"),
    ] {
        let err = parse(text).expect_err(text);
        assert!(
            err.contains("unknown field") && err.contains(key),
            "{text}: {err}"
        );
    }
    let err = parse("kind = \"no_such\"").unwrap_err();
    assert!(err.contains("unknown variant"), "{err}");
}
