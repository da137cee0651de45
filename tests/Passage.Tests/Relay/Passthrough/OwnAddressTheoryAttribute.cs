using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Passage.Tests.Relay.Passthrough;

/// <summary>
/// A theory that needs an IPv4 address of this host other than loopback (<see cref="Address"/>); skipped, with a reason,
/// only where the host has none.
/// </summary>
internal sealed class OwnAddressTheoryAttribute : TheoryAttribute
{
    public OwnAddressTheoryAttribute()
    {
        if (Address is null)
        {
            Skip = "this host has no IPv4 address but loopback";
        }
    }

    /// <summary>An IPv4 address of an interface of this host that is up, not loopback; null when there is none.</summary>
    public static IPAddress? Address { get; } = NetworkInterface.GetAllNetworkInterfaces()
        .Where(i => i.OperationalStatus == OperationalStatus.Up && i.NetworkInterfaceType != NetworkInterfaceType.Loopback)
        .SelectMany(i => i.GetIPProperties().UnicastAddresses)
        .Select(a => a.Address)
        .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
}
