//! Kernel option value tables (`bond_options.c`), one typed enum per option.
//! Each value is accepted by its kernel name or its kernel number, exactly
//! as sysfs/netlink/nmcli accept them, so existing configs paste unchanged.

use std::fmt;
use std::str::FromStr;

/// A value that is neither a known name nor a known number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct ParseEnumError {
    pub what: &'static str,
    pub value: String,
}

/// Lets the config parser treat every value table alike.
pub(crate) trait KernelEnum: Sized + Copy {
    fn parse_value(s: &str) -> Option<Self>;
    fn from_num(n: u64) -> Option<Self>;
    fn choices_text() -> String;
    fn names() -> Vec<&'static str>;
}

macro_rules! kernel_enum {
    (
        $(#[$meta:meta])*
        $name:ident ($what:literal, default $default:ident) {
            $($(#[$vmeta:meta])* $var:ident = $num:literal => $kname:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $var,)+
        }

        impl $name {
            /// Every value in kernel number order.
            pub const ALL: &'static [$name] = &[$($name::$var,)+];
            /// The spelling sysfs, /proc and nmcli use.
            pub fn kernel_name(self) -> &'static str {
                match self { $($name::$var => $kname,)+ }
            }

            /// The kernel's numeric value (netlink attribute value).
            pub fn number(self) -> u8 {
                match self { $($name::$var => $num,)+ }
            }

            pub fn from_number(n: u64) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| u64::from(v.number()) == n)
            }

            /// Exact, case-sensitive, as the kernel compares.
            pub fn from_kernel_name(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.kernel_name() == s)
            }

            /// Name or decimal number, like the kernel's `bond_opt_parse`.
            pub fn parse(s: &str) -> Option<Self> {
                let s = s.trim();
                Self::from_kernel_name(s).or_else(|| s.parse::<u64>().ok().and_then(Self::from_number))
            }

            /// "a/0, b/1, ..." for error messages.
            pub fn choices() -> String {
                Self::ALL
                    .iter()
                    .map(|v| format!("{}/{}", v.kernel_name(), v.number()))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.kernel_name())
            }
        }

        impl KernelEnum for $name {
            fn parse_value(s: &str) -> Option<Self> {
                Self::parse(s)
            }

            fn from_num(n: u64) -> Option<Self> {
                Self::from_number(n)
            }

            fn choices_text() -> String {
                Self::choices()
            }

            fn names() -> Vec<&'static str> {
                Self::ALL.iter().map(|v| v.kernel_name()).collect()
            }
        }

        impl FromStr for $name {
            type Err = ParseEnumError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s).ok_or_else(|| ParseEnumError { what: $what, value: s.to_owned() })
            }
        }
    };
}

kernel_enum! {
    /// Bonding mode (`mode`). The kernel default is balance-rr.
    Mode("mode", default BalanceRr) {
        BalanceRr = 0 => "balance-rr",
        ActiveBackup = 1 => "active-backup",
        BalanceXor = 2 => "balance-xor",
        Broadcast = 3 => "broadcast",
        Ieee8023ad = 4 => "802.3ad",
        BalanceTlb = 5 => "balance-tlb",
        BalanceAlb = 6 => "balance-alb",
    }
}

impl Mode {
    /// The "Bonding Mode:" line of /proc/net/bonding (`bond_mode_name`).
    pub fn proc_name(self) -> &'static str {
        match self {
            Mode::BalanceRr => "load balancing (round-robin)",
            Mode::ActiveBackup => "fault-tolerance (active-backup)",
            Mode::BalanceXor => "load balancing (xor)",
            Mode::Broadcast => "fault-tolerance (broadcast)",
            Mode::Ieee8023ad => "IEEE 802.3ad Dynamic link aggregation",
            Mode::BalanceTlb => "transmit load balancing",
            Mode::BalanceAlb => "adaptive load balancing",
        }
    }

    /// Modes with a current/primary slave (kernel `bond_uses_primary`).
    pub fn uses_primary(self) -> bool {
        matches!(
            self,
            Mode::ActiveBackup | Mode::BalanceTlb | Mode::BalanceAlb
        )
    }

    /// Modes where the kernel allows the ARP monitor (`bond_mode_uses_arp`).
    pub fn uses_arp(self) -> bool {
        !matches!(self, Mode::Ieee8023ad | Mode::BalanceTlb | Mode::BalanceAlb)
    }
}

kernel_enum! {
    /// What carries the bond's traffic to the host stack. Not a kernel
    /// option: bondd's logical interface is either a veth pair or a TAP.
    InterfaceKind("interface", default Veth) {
        Veth = 0 => "veth",
        Tap = 1 => "tap",
    }
}

kernel_enum! {
    /// How XDP attaches to the slaves (`xdp_mode`). Not a kernel option:
    /// `auto` tries the driver's native mode and falls back to generic
    /// (skb) mode; the other two insist.
    XdpMode("xdp_mode", default Auto) {
        Auto = 0 => "auto",
        Native = 1 => "native",
        Generic = 2 => "generic",
    }
}

kernel_enum! {
    /// When a returning primary takes over again (`primary_reselect`).
    PrimaryReselect("primary_reselect", default Always) {
        Always = 0 => "always",
        Better = 1 => "better",
        Failure = 2 => "failure",
    }
}

kernel_enum! {
    /// MAC handling on failover (`fail_over_mac`).
    FailOverMac("fail_over_mac", default None) {
        None = 0 => "none",
        Active = 1 => "active",
        Follow = 2 => "follow",
    }
}

kernel_enum! {
    /// Transmit hash (`xmit_hash_policy`); numbers are the kernel's, which
    /// is why layer3+4 is 1 and layer2+3 is 2.
    XmitHashPolicy("xmit_hash_policy", default Layer2) {
        Layer2 = 0 => "layer2",
        Layer34 = 1 => "layer3+4",
        Layer23 = 2 => "layer2+3",
        Encap23 = 3 => "encap2+3",
        Encap34 = 4 => "encap3+4",
        VlanSrcMac = 5 => "vlan+srcmac",
    }
}

kernel_enum! {
    /// How a transmit hash picks a slave (`xmit_hash_table`). **bondd-only**:
    /// not a kernel option. `modulo` (default) is the kernel's
    /// `usable[hash % count]`, under which a slave failing or returning moves
    /// most flows of the other slaves too; `stable` maps the hash through a
    /// 256-bucket table so that only the failed slave's flows move, and a
    /// returning slave takes back at most its share. Used by balance-xor and
    /// 802.3ad.
    XmitHashTable("xmit_hash_table", default Modulo) {
        Modulo = 0 => "modulo",
        Stable = 1 => "stable",
    }
}

kernel_enum! {
    /// LACPDU rate asked of the partner (`lacp_rate`).
    LacpRate("lacp_rate", default Slow) {
        Slow = 0 => "slow",
        Fast = 1 => "fast",
    }
}

kernel_enum! {
    /// Active aggregator selection policy (`ad_select`).
    AdSelect("ad_select", default Stable) {
        Stable = 0 => "stable",
        Bandwidth = 1 => "bandwidth",
        Count = 2 => "count",
        ActorPortPrio = 3 => "actor_port_prio",
    }
}

kernel_enum! {
    /// Which ARP traffic counts as liveness (`arp_validate`).
    ArpValidate("arp_validate", default None) {
        None = 0 => "none",
        Active = 1 => "active",
        Backup = 2 => "backup",
        All = 3 => "all",
        Filter = 4 => "filter",
        FilterActive = 5 => "filter_active",
        FilterBackup = 6 => "filter_backup",
    }
}

kernel_enum! {
    /// Whether any or all ARP targets must answer (`arp_all_targets`).
    ArpAllTargets("arp_all_targets", default Any) {
        Any = 0 => "any",
        All = 1 => "all",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_by_name_and_number() {
        let cases = [
            ("balance-rr", "0", Mode::BalanceRr),
            ("active-backup", "1", Mode::ActiveBackup),
            ("balance-xor", "2", Mode::BalanceXor),
            ("broadcast", "3", Mode::Broadcast),
            ("802.3ad", "4", Mode::Ieee8023ad),
            ("balance-tlb", "5", Mode::BalanceTlb),
            ("balance-alb", "6", Mode::BalanceAlb),
        ];
        for (name, num, mode) in cases {
            assert_eq!(Mode::parse(name), Some(mode));
            assert_eq!(num.parse::<Mode>(), Ok(mode));
            assert_eq!(mode.kernel_name(), name);
            assert_eq!(mode.number().to_string(), num);
            assert_eq!(mode.to_string(), name);
        }
        assert_eq!(Mode::parse("7"), None);
        assert_eq!(
            Mode::parse("Active-Backup"),
            None,
            "kernel compares exactly"
        );
        assert_eq!(Mode::default(), Mode::BalanceRr);
        assert_eq!(
            "lacp".parse::<Mode>().unwrap_err().to_string(),
            "unknown mode `lacp`"
        );
    }

    #[test]
    fn proc_names() {
        assert_eq!(
            Mode::ActiveBackup.proc_name(),
            "fault-tolerance (active-backup)"
        );
        assert_eq!(
            Mode::Ieee8023ad.proc_name(),
            "IEEE 802.3ad Dynamic link aggregation"
        );
        assert_eq!(Mode::BalanceRr.proc_name(), "load balancing (round-robin)");
        assert_eq!(Mode::BalanceAlb.proc_name(), "adaptive load balancing");
    }

    #[test]
    fn other_enums_by_name_and_number() {
        assert_eq!(
            XmitHashPolicy::parse("layer3+4"),
            Some(XmitHashPolicy::Layer34)
        );
        assert_eq!(XmitHashPolicy::parse("1"), Some(XmitHashPolicy::Layer34));
        assert_eq!(XmitHashPolicy::parse("2"), Some(XmitHashPolicy::Layer23));
        assert_eq!(XmitHashPolicy::parse("5"), Some(XmitHashPolicy::VlanSrcMac));
        assert_eq!(XmitHashPolicy::parse("6"), None);
        assert_eq!(LacpRate::parse("fast"), Some(LacpRate::Fast));
        assert_eq!(LacpRate::parse("0"), Some(LacpRate::Slow));
        assert_eq!(AdSelect::parse("count"), Some(AdSelect::Count));
        assert_eq!(AdSelect::parse("3"), Some(AdSelect::ActorPortPrio));
        assert_eq!(
            ArpValidate::parse("filter_backup"),
            Some(ArpValidate::FilterBackup)
        );
        assert_eq!(ArpValidate::parse("4"), Some(ArpValidate::Filter));
        assert_eq!(ArpAllTargets::parse("1"), Some(ArpAllTargets::All));
        assert_eq!(FailOverMac::parse("follow"), Some(FailOverMac::Follow));
        assert_eq!(FailOverMac::parse("1"), Some(FailOverMac::Active));
        assert_eq!(
            PrimaryReselect::parse("better"),
            Some(PrimaryReselect::Better)
        );
        assert_eq!(PrimaryReselect::parse("2"), Some(PrimaryReselect::Failure));
        assert_eq!(InterfaceKind::parse("tap"), Some(InterfaceKind::Tap));
        assert_eq!(XmitHashPolicy::default(), XmitHashPolicy::Layer2);
        assert_eq!(LacpRate::choices(), "slow/0, fast/1");
    }
}
