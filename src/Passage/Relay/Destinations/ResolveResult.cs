using System.Net;
using System.Net.Sockets;

namespace Passage.Relay.Destinations;

/// <summary>The outcome of <see cref="DestinationResolver.ResolveAsync"/>.</summary>
public sealed class ResolveResult
{
    private ResolveResult(
        ResolveStatus status,
        IReadOnlyList<IPAddress> addresses,
        IPAddress? refusedAddress = null,
        AddressCategory? refusedCategory = null,
        SocketError? dnsErrorCode = null)
    {
        Status = status;
        Addresses = addresses;
        RefusedAddress = refusedAddress;
        RefusedCategory = refusedCategory;
        DnsErrorCode = dnsErrorCode;
    }

    /// <summary>How resolving ended.</summary>
    public ResolveStatus Status { get; }

    /// <summary>
    /// When <see cref="Status"/> is <see cref="ResolveStatus.Ok"/>, the checked addresses in the order
    /// they were returned, without duplicates, never empty; otherwise empty.
    /// </summary>
    public IReadOnlyList<IPAddress> Addresses { get; }

    /// <summary>
    /// When <see cref="Status"/> is <see cref="ResolveStatus.Prohibited"/>, the first address the policy
    /// refused; otherwise <see langword="null"/>. Destination data: keep it out of logs that also name
    /// the client.
    /// </summary>
    public IPAddress? RefusedAddress { get; }

    /// <summary>
    /// When <see cref="Status"/> is <see cref="ResolveStatus.Prohibited"/>, the category of
    /// <see cref="RefusedAddress"/>; otherwise <see langword="null"/>.
    /// </summary>
    public AddressCategory? RefusedCategory { get; }

    /// <summary>
    /// When <see cref="Status"/> is <see cref="ResolveStatus.DnsError"/>, the resolver's error (for example
    /// <see cref="SocketError.HostNotFound"/> or <see cref="SocketError.TryAgain"/>); otherwise
    /// <see langword="null"/>.
    /// </summary>
    public SocketError? DnsErrorCode { get; }

    internal static ResolveResult Ok(IReadOnlyList<IPAddress> addresses) => new(ResolveStatus.Ok, addresses);

    internal static ResolveResult InvalidName() => new(ResolveStatus.InvalidName, []);

    internal static ResolveResult DnsError(SocketError code) => new(ResolveStatus.DnsError, [], dnsErrorCode: code);

    internal static ResolveResult NoAddresses() => new(ResolveStatus.NoAddresses, []);

    internal static ResolveResult Prohibited(IPAddress address, AddressCategory category) =>
        new(ResolveStatus.Prohibited, [], address, category);
}
