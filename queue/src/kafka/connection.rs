//! How every Sluice Kafka client reaches the brokers: their addresses, TLS and SASL, and any
//! other librdkafka setting an operator needs (client certificates, timeouts, `debug`), given
//! the same way to both binaries.

use std::path::PathBuf;
use std::str::FromStr;

use clap::ValueEnum;
use rdkafka::config::ClientConfig;

/// Settings Sluice's own flags or guarantees own: durability (`acks`, idempotence, when
/// offsets are stored) or a dedicated flag. `--kafka-option` may not set them, so an operator
/// cannot weaken an acknowledgement by accident.
const OWNED: &[(&str, &str)] = &[
    ("bootstrap.servers", "--kafka-brokers"),
    ("metadata.broker.list", "--kafka-brokers"),
    ("security.protocol", "--kafka-security-protocol"),
    ("sasl.mechanism", "--kafka-sasl-mechanism"),
    ("sasl.mechanisms", "--kafka-sasl-mechanism"),
    ("sasl.username", "--kafka-sasl-username"),
    ("sasl.password", "--kafka-sasl-password"),
    ("ssl.ca.location", "--kafka-ca-location"),
    ("group.id", "--group"),
    ("linger.ms", "--kafka-linger"),
    ("queue.buffering.max.ms", "--kafka-linger"),
    ("message.timeout.ms", "--kafka-delivery-timeout"),
    ("delivery.timeout.ms", "--kafka-delivery-timeout"),
    ("queue.buffering.max.messages", "--kafka-max-buffered"),
    (
        "enable.idempotence",
        "an acknowledged event must be written once",
    ),
    (
        "acks",
        "an event is acknowledged only once every in-sync replica has it",
    ),
    (
        "request.required.acks",
        "an event is acknowledged only once every in-sync replica has it",
    ),
    (
        "enable.auto.offset.store",
        "offsets are stored only after the store has the batch",
    ),
    (
        "enable.auto.commit",
        "offsets are stored only after the store has the batch",
    ),
    (
        "auto.offset.reset",
        "a new group reads the topic from its start",
    ),
    (
        "transactional.id",
        "the producer is idempotent, not transactional",
    ),
];

/// How the brokers are reached, shared by `gateway` and `consumer`. Its `Debug` shows neither
/// the password nor option values.
#[derive(Clone, clap::Args)]
pub struct ConnectionArgs {
    /// Kafka bootstrap servers, `host:port,…`.
    #[arg(long, env = "SLUICE_KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// How connections to the brokers are secured.
    #[arg(long, env = "SLUICE_KAFKA_SECURITY_PROTOCOL", value_enum, default_value_t = SecurityProtocol::Plaintext)]
    pub kafka_security_protocol: SecurityProtocol,
    /// SASL mechanism, with `sasl_plaintext` or `sasl_ssl`.
    #[arg(long, env = "SLUICE_KAFKA_SASL_MECHANISM", value_enum)]
    pub kafka_sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name.
    #[arg(long, env = "SLUICE_KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,
    /// SASL password; prefer the environment variable to the flag, which `ps` shows.
    #[arg(long, env = "SLUICE_KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<String>,
    /// PEM file of the certificate authorities the brokers' certificates are checked against
    /// (with `ssl` or `sasl_ssl`; the system's store when not given).
    #[arg(long, env = "SLUICE_KAFKA_CA_LOCATION")]
    pub kafka_ca_location: Option<PathBuf>,
    /// Any other librdkafka setting, `key=value`; repeatable, or `;`-separated (values such as
    /// `debug=broker,security` hold commas), e.g. `ssl.certificate.location=/etc/sluice/client.pem`.
    #[arg(long, env = "SLUICE_KAFKA_OPTIONS", value_delimiter = ';')]
    pub kafka_option: Vec<KafkaOption>,
}

impl std::fmt::Debug for ConnectionArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionArgs")
            .field("kafka_brokers", &self.kafka_brokers)
            .field("kafka_security_protocol", &self.kafka_security_protocol)
            .field("kafka_sasl_mechanism", &self.kafka_sasl_mechanism)
            .field("kafka_sasl_username", &self.kafka_sasl_username)
            .field(
                "kafka_sasl_password",
                &self.kafka_sasl_password.as_ref().map(|_| "…"),
            )
            .field("kafka_ca_location", &self.kafka_ca_location)
            .field("kafka_option", &self.kafka_option)
            .finish()
    }
}

/// `security.protocol` as librdkafka names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
}

/// The SASL mechanisms librdkafka implements without a Kerberos library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SaslMechanism {
    #[value(name = "PLAIN")]
    Plain,
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// One `--kafka-option key=value`. Its value may be a secret (`ssl.key.password`, an inline
/// PEM key), so neither `Debug` nor an error message ever shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct KafkaOption {
    pub key: String,
    pub value: String,
}

impl std::fmt::Debug for KafkaOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}=…", self.key)
    }
}

impl FromStr for KafkaOption {
    type Err = &'static str;

    /// Only splits: the name is checked by [`ConnectionArgs::connection`], whose errors name
    /// the key alone (a parse error would echo the whole argument, value included).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (key, value) = s.split_once('=').ok_or("expected key=value")?;
        Ok(KafkaOption {
            key: key.trim().to_owned(),
            value: value.to_owned(),
        })
    }
}

impl KafkaOption {
    fn check(&self) -> Result<(), ConnectionError> {
        let key = self.key.as_str();
        let well_formed = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
        if !well_formed {
            return Err(ConnectionError::OptionName(key.to_owned()));
        }
        match OWNED.iter().find(|(owned, _)| *owned == key) {
            Some((_, owner)) => Err(ConnectionError::OptionOwned {
                key: key.to_owned(),
                owner,
            }),
            None => Ok(()),
        }
    }
}

/// A combination of flags that cannot work, refused at start rather than left for the first
/// connection to fail on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectionError {
    #[error("--kafka-security-protocol {0} needs --kafka-sasl-mechanism, --kafka-sasl-username and --kafka-sasl-password")]
    SaslIncomplete(&'static str),
    #[error("SASL settings are given but --kafka-security-protocol {0} does not use SASL (sasl_plaintext or sasl_ssl does)")]
    SaslUnused(&'static str),
    #[error("--kafka-ca-location is given but --kafka-security-protocol {0} does not use TLS (ssl or sasl_ssl does)")]
    CaUnused(&'static str),
    #[error("--kafka-brokers is empty")]
    NoBrokers,
    #[error("--kafka-option `{0}` is not a librdkafka setting name")]
    OptionName(String),
    #[error("--kafka-option `{key}` cannot be set here: {owner}")]
    OptionOwned { key: String, owner: &'static str },
}

/// Validated settings every client of one binary starts from. Its `Debug` leaves the password
/// and option values out, so it can be logged.
#[derive(Clone)]
pub struct Connection {
    brokers: String,
    settings: Vec<(&'static str, String)>,
    options: Vec<KafkaOption>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown: Vec<_> = self
            .settings
            .iter()
            .map(|(k, v)| {
                (
                    *k,
                    if *k == "sasl.password" {
                        "…"
                    } else {
                        v.as_str()
                    },
                )
            })
            .collect();
        f.debug_struct("Connection")
            .field("brokers", &self.brokers)
            .field("settings", &shown)
            .field("options", &self.options)
            .finish()
    }
}

impl Connection {
    /// The bootstrap servers, for messages.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// A client configuration: the connection's settings, then `own` (the client's), then the
    /// operator's options, which may tune anything Sluice does not own.
    pub fn client_config(&self, own: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "sluice");
        for (key, value) in &self.settings {
            config.set(*key, value);
        }
        for (key, value) in own {
            config.set(*key, *value);
        }
        for option in &self.options {
            config.set(&option.key, &option.value);
        }
        config
    }
}

impl ConnectionArgs {
    /// Checks the flags fit together and turns them into client settings.
    pub fn connection(&self) -> Result<Connection, ConnectionError> {
        if self.kafka_brokers.trim().is_empty() {
            return Err(ConnectionError::NoBrokers);
        }
        let protocol = self.kafka_security_protocol;
        let mut settings = vec![("security.protocol", protocol.name().to_owned())];
        let sasl_given = self.kafka_sasl_mechanism.is_some()
            || self.kafka_sasl_username.is_some()
            || self.kafka_sasl_password.is_some();
        if protocol.sasl() {
            let (Some(mechanism), Some(username), Some(password)) = (
                self.kafka_sasl_mechanism,
                &self.kafka_sasl_username,
                &self.kafka_sasl_password,
            ) else {
                return Err(ConnectionError::SaslIncomplete(protocol.name()));
            };
            settings.push(("sasl.mechanism", mechanism.name().to_owned()));
            settings.push(("sasl.username", username.clone()));
            settings.push(("sasl.password", password.clone()));
        } else if sasl_given {
            return Err(ConnectionError::SaslUnused(protocol.name()));
        }
        if let Some(ca) = &self.kafka_ca_location {
            if !protocol.tls() {
                return Err(ConnectionError::CaUnused(protocol.name()));
            }
            settings.push(("ssl.ca.location", ca.display().to_string()));
        }
        for option in &self.kafka_option {
            option.check()?;
        }
        Ok(Connection {
            brokers: self.kafka_brokers.clone(),
            settings,
            options: self.kafka_option.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        kafka: ConnectionArgs,
    }

    fn parse(args: &[&str]) -> Result<ConnectionArgs, clap::Error> {
        Flags::try_parse_from(std::iter::once("test").chain(args.iter().copied())).map(|f| f.kafka)
    }

    fn setting(config: &ClientConfig, key: &str) -> Option<String> {
        config.get(key).map(str::to_owned)
    }

    #[test]
    fn sasl_over_tls_reaches_every_client_setting() {
        let args = parse(&[
            "--kafka-brokers=broker-1:9093,broker-2:9093",
            "--kafka-security-protocol=sasl_ssl",
            "--kafka-sasl-mechanism=SCRAM-SHA-512",
            "--kafka-sasl-username=sluice",
            "--kafka-sasl-password=s3cret",
            "--kafka-ca-location=/etc/ssl/kafka-ca.pem",
            "--kafka-option=ssl.endpoint.identification.algorithm=https",
            "--kafka-option",
            "compression.type=zstd;debug=broker,security",
        ])
        .expect("parses");
        let connection = args.connection().expect("valid");
        let config = connection.client_config(&[("compression.type", "lz4")]);
        assert_eq!(
            setting(&config, "bootstrap.servers").expect("set"),
            "broker-1:9093,broker-2:9093"
        );
        assert_eq!(
            setting(&config, "security.protocol").expect("set"),
            "sasl_ssl"
        );
        assert_eq!(
            setting(&config, "sasl.mechanism").expect("set"),
            "SCRAM-SHA-512"
        );
        assert_eq!(setting(&config, "sasl.username").expect("set"), "sluice");
        assert_eq!(setting(&config, "sasl.password").expect("set"), "s3cret");
        assert_eq!(
            setting(&config, "ssl.ca.location").expect("set"),
            "/etc/ssl/kafka-ca.pem"
        );
        assert_eq!(
            setting(&config, "ssl.endpoint.identification.algorithm").expect("set"),
            "https"
        );
        // The operator's option wins over the client's own tuning.
        assert_eq!(setting(&config, "compression.type").expect("set"), "zstd");
        assert_eq!(setting(&config, "debug").expect("set"), "broker,security");
        let shown = format!("{connection:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("sluice"), "{shown}");
    }

    #[test]
    fn plaintext_is_the_default() {
        let connection = parse(&[]).expect("parses").connection().expect("valid");
        let config = connection.client_config(&[]);
        assert_eq!(
            setting(&config, "security.protocol").expect("set"),
            "plaintext"
        );
        assert_eq!(
            setting(&config, "bootstrap.servers").expect("set"),
            "127.0.0.1:9092"
        );
        assert_eq!(setting(&config, "sasl.mechanism"), None);
    }

    #[test]
    fn flags_that_cannot_work_together_are_refused() {
        let refused = |args: &[&str]| {
            parse(args)
                .expect("parses")
                .connection()
                .expect_err("refused")
        };
        assert_eq!(
            refused(&[
                "--kafka-security-protocol=sasl_ssl",
                "--kafka-sasl-mechanism=PLAIN"
            ]),
            ConnectionError::SaslIncomplete("sasl_ssl")
        );
        assert_eq!(
            refused(&[
                "--kafka-security-protocol=sasl_plaintext",
                "--kafka-sasl-username=u",
                "--kafka-sasl-password=p"
            ]),
            ConnectionError::SaslIncomplete("sasl_plaintext")
        );
        assert_eq!(
            refused(&["--kafka-sasl-username=u"]),
            ConnectionError::SaslUnused("plaintext")
        );
        assert_eq!(
            refused(&["--kafka-security-protocol=ssl", "--kafka-sasl-password=p"]),
            ConnectionError::SaslUnused("ssl")
        );
        assert_eq!(
            refused(&["--kafka-ca-location=/ca.pem"]),
            ConnectionError::CaUnused("plaintext")
        );
        assert_eq!(refused(&["--kafka-brokers= "]), ConnectionError::NoBrokers);
    }

    #[test]
    fn bad_values_are_refused_when_parsed() {
        for bad in [
            ["--kafka-security-protocol=tls"].as_slice(),
            &["--kafka-sasl-mechanism=GSSAPI"],
            &["--kafka-sasl-mechanism=plain"],
            &["--kafka-option=no-equals-sign"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn options_naming_what_sluice_owns_are_refused_without_showing_their_value() {
        for bad in [
            "=value",
            "Bad Key=1",
            // Durability and dedicated flags cannot be overridden through options.
            "acks=1",
            "enable.idempotence=false",
            "enable.auto.offset.store=true",
            "sasl.password=hunter2",
            "bootstrap.servers=elsewhere:9092",
            "linger.ms=100",
        ] {
            let flag = format!("--kafka-option={bad}");
            let error = parse(&[&flag])
                .expect("parses")
                .connection()
                .expect_err(bad);
            let (key, value) = bad.split_once('=').expect("key=value");
            let shown = error.to_string();
            assert!(shown.contains(key.trim()), "{shown}");
            assert!(value.len() < 2 || !shown.contains(value), "{shown}");
        }
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let args = parse(&[
            "--kafka-security-protocol=sasl_ssl",
            "--kafka-sasl-mechanism=PLAIN",
            "--kafka-sasl-username=sluice",
            "--kafka-sasl-password=pass-word-1",
            "--kafka-option=ssl.key.password=pass-word-2",
        ])
        .expect("parses");
        let connection = args.connection().expect("valid");
        for shown in [format!("{args:?}"), format!("{connection:?}")] {
            assert!(!shown.contains("pass-word"), "{shown}");
            assert!(shown.contains("ssl.key.password"), "{shown}");
        }
    }

    #[test]
    fn options_keep_their_value_whole() {
        let option: KafkaOption = "sasl.oauthbearer.config=principal=a extension_x=b=c"
            .parse()
            .expect("set");
        assert_eq!(option.key, "sasl.oauthbearer.config");
        assert_eq!(option.value, "principal=a extension_x=b=c");
    }
}
