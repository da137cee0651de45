namespace Passage.Relay.Destinations;

/// <summary>
/// What kind of destination an IP address is, as far as the relay's "no open proxy" rule cares.
/// Every category except <see cref="Public"/> is refused by default; see <see cref="AddressPolicy"/>
/// for which ones <c>--allow-private</c> opens and which need an explicit <c>--allow-network</c>.
/// </summary>
public enum AddressCategory
{
    /// <summary>
    /// A globally reachable unicast address: anything not in one of the other categories.
    /// Always allowed.
    /// </summary>
    Public,

    /// <summary>
    /// The unspecified address, <c>0.0.0.0</c> and <c>::</c> (RFC 1122 §3.2.1.3, RFC 4291 §2.5.2).
    /// Many stacks connect it to the local host, so it is never a legitimate destination.
    /// </summary>
    Unspecified,

    /// <summary>
    /// Loopback: <c>127.0.0.0/8</c> (RFC 1122 §3.2.1.3) and <c>::1</c> (RFC 4291 §2.5.3); and, to the policy, any
    /// address of this host's interfaces, which its kernel delivers locally as it does loopback.
    /// </summary>
    Loopback,

    /// <summary>
    /// Private networks: <c>10.0.0.0/8</c>, <c>172.16.0.0/12</c>, <c>192.168.0.0/16</c> (RFC 1918) and
    /// IPv6 unique local addresses <c>fc00::/7</c> (RFC 4193).
    /// </summary>
    Private,

    /// <summary>
    /// Link-local: <c>169.254.0.0/16</c> (RFC 3927) and <c>fe80::/10</c> (RFC 4291 §2.5.6),
    /// except the cloud metadata addresses in it, which are <see cref="Metadata"/>.
    /// </summary>
    LinkLocal,

    /// <summary>
    /// Carrier-grade NAT shared address space <c>100.64.0.0/10</c> (RFC 6598), except
    /// <c>100.100.100.200</c>, which is <see cref="Metadata"/>.
    /// </summary>
    SharedCgnat,

    /// <summary>
    /// Multicast: <c>224.0.0.0/4</c> (RFC 5771) and <c>ff00::/8</c> (RFC 4291 §2.7).
    /// </summary>
    Multicast,

    /// <summary>
    /// Not a destination on the public internet for any other reason: limited broadcast
    /// <c>255.255.255.255</c> (RFC 919, RFC 8190), the future-use block <c>240.0.0.0/4</c> (RFC 1112 §4),
    /// "this network" <c>0.0.0.0/8</c>, IETF protocol assignments (<c>192.0.0.0/24</c>, <c>2001::/23</c>),
    /// benchmarking (<c>198.18.0.0/15</c>, <c>2001:2::/48</c>), documentation (<c>192.0.2.0/24</c>,
    /// <c>198.51.100.0/24</c>, <c>203.0.113.0/24</c>, <c>2001:db8::/32</c>, <c>3fff::/20</c>), discard-only
    /// <c>100::/64</c>, and every IPv6 address outside global unicast <c>2000::/3</c> that is not in
    /// another category. The full table, with its RFCs, is in <see cref="AddressClassifier"/>.
    /// </summary>
    Reserved,

    /// <summary>
    /// A cloud instance metadata endpoint, which hands out credentials to whoever asks from inside
    /// the instance: <c>169.254.169.254</c>, <c>169.254.170.2</c>, <c>169.254.170.23</c>, <c>169.254.0.23</c>,
    /// <c>169.254.42.42</c>, <c>100.100.100.200</c>, <c>168.63.129.16</c>, <c>192.0.0.192</c>, <c>fd00:ec2::254</c>,
    /// <c>fd00:ec2::23</c>, <c>fd20:ce::254</c>, <c>fd00:42::42</c>, <c>fd00:c1::a9fe:a9fe</c>, <c>fd00:a9fe:a9fe::1</c>
    /// and <c>fd00:100::100:200</c>.
    /// Allowed only by an allowed network of that one address, never by a wider one that holds it.
    /// </summary>
    Metadata,
}
