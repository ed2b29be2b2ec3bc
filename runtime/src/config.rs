//! Configs built in code. A binary reads its config from flags and `ZOOMSTREAM_…` variables
//! (`Config::parse`); a service embedded in another program (dev mode, tests) starts from the
//! defaults alone, so a stray variable in the environment cannot change it.

/// `C` with every setting at its default: no command line, no environment variable read.
///
/// Panics if `C` has a setting without a default: a programming error the first test finds.
pub fn defaults<C: clap::Parser>() -> C {
    let command = C::command().mut_args(|arg| arg.env(None::<&'static str>));
    let matches = command
        .try_get_matches_from([C::command().get_name().to_owned()])
        .expect("every setting of an embedded config has a default");
    C::from_arg_matches(&matches).expect("the defaults make a config")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Settings {
        #[arg(long, env = "ZOOMSTREAM_RUNTIME_CONFIG_TEST", default_value_t = 1)]
        number: u32,
    }

    #[test]
    fn defaults_ignore_the_environment() {
        std::env::set_var("ZOOMSTREAM_RUNTIME_CONFIG_TEST", "2");
        let from_env = <Settings as clap::Parser>::parse_from(["settings"]).number;
        let embedded = defaults::<Settings>().number;
        std::env::remove_var("ZOOMSTREAM_RUNTIME_CONFIG_TEST");
        assert_eq!(
            from_env, 2,
            "the variable is set and the binary's parse reads it"
        );
        assert_eq!(embedded, 1);
    }
}
