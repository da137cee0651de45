using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using Passage.Configuration;

namespace Passage.Relay.Destinations;

/// <summary>An inclusive range of TCP ports, 1 to 65535.</summary>
/// <param name="Low">The lowest port in the range.</param>
/// <param name="High">The highest port in the range, at least <paramref name="Low"/>.</param>
internal readonly record struct PortRange(int Low, int High)
{
    /// <summary>Every port: the pattern <c>*</c>. Port 0 is not a destination and matches nothing.</summary>
    public static PortRange Any { get; } = new(1, 65535);

    /// <summary>Whether <paramref name="port"/> is in the range.</summary>
    public bool Contains(int port) => port >= Low && port <= High;

    /// <summary>Parses <c>443</c>, <c>8000-8999</c> or <c>*</c>; an error text on failure.</summary>
    public static bool TryParse(string text, out PortRange range, [NotNullWhen(false)] out string? error)
    {
        range = default;
        error = null;
        if (text == "*")
        {
            range = Any;
            return true;
        }

        int dash = text.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0)
        {
            if (!HostPort.TryParsePort(text, out int port))
            {
                error = $"'{text}' is not a port (1-65535, a range such as 8000-8999, or *)";
                return false;
            }

            range = new PortRange(port, port);
            return true;
        }

        if (!HostPort.TryParsePort(text[..dash], out int low) || !HostPort.TryParsePort(text[(dash + 1)..], out int high))
        {
            error = $"'{text}' is not a port range (two ports 1-65535 joined by '-', such as 8000-8999)";
            return false;
        }

        if (low > high)
        {
            error = $"the port range '{text}' is empty; did you mean '{high}-{low}'?";
            return false;
        }

        range = new PortRange(low, high);
        return true;
    }

    /// <inheritdoc />
    public override string ToString() =>
        this == Any ? "*"
        : Low == High ? Low.ToString(CultureInfo.InvariantCulture)
        : string.Create(CultureInfo.InvariantCulture, $"{Low}-{High}");
}
