using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace Passage.Cli.Hosting;

/// <summary>
/// A start that fails for a cause outside the program (an address not on this machine, a port in use, a file that
/// cannot be read or written, a key OpenSSL refuses): said as one line, <c>Cannot start: CAUSE</c>, and the command exits
/// 1. The relay, the client and the tunnel decide it here alike. Any other exception is a bug: it is not caught, so its
/// stack trace is shown.
/// </summary>
internal static class StartFailure
{
    /// <summary>
    /// Whether <paramref name="exception"/>, raised while starting, comes from the environment: sockets
    /// (<see cref="SocketException"/>), files (<see cref="IOException"/>, <see cref="UnauthorizedAccessException"/>),
    /// unusable key or certificate files (<see cref="InvalidDataException"/>, <see cref="CryptographicException"/>).
    /// Not <see cref="ArgumentException"/>: a start raises it only for options the settings already refuse, so one seen
    /// here is a bug.
    /// </summary>
    public static bool IsEnvironmental(Exception exception) =>
        exception is SocketException or IOException or InvalidDataException or UnauthorizedAccessException or CryptographicException;

    /// <summary>Logs <c>Cannot start: CAUSE</c> at critical level and returns the exit code, 1.</summary>
    public static int Report(ILogger logger, Exception exception)
    {
        logger.LogCritical("Cannot start: {Error}", exception.Message);
        return 1;
    }
}
