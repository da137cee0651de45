using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Passage.Cli.Hosting;

/// <summary>
/// The service manager's notification protocol (systemd's <c>sd_notify</c>): one datagram of
/// <c>KEY=VALUE</c> lines to the Unix socket named by <c>NOTIFY_SOCKET</c>, a path or, starting with <c>@</c>,
/// an abstract socket name. Sending is best effort: a service manager that went away stops no service.
/// </summary>
internal sealed class SdNotify : IDisposable
{
    private readonly Socket? _socket;
    private readonly UnixDomainSocketEndPoint? _endpoint;
    private readonly string? _problem;

    private SdNotify(Socket socket, UnixDomainSocketEndPoint endpoint)
    {
        _socket = socket;
        _endpoint = endpoint;
    }

    // A notifier that sends nothing: every send returns problem.
    private SdNotify(string problem) => _problem = problem;

    /// <summary>A notifier for <c>NOTIFY_SOCKET</c>, or null when it is not set (not run by a service manager).</summary>
    public static SdNotify? FromEnvironment() =>
        Environment.GetEnvironmentVariable("NOTIFY_SOCKET") is { Length: > 0 } name ? Create(name) : null;

    /// <summary>
    /// A notifier for the socket <paramref name="name"/>: a path, or <c>@name</c> for an abstract socket. A name no Unix
    /// socket address can hold (longer than its 108 bytes) gives a notifier whose every send returns that error: it threw
    /// here, before the start, and the service ended in a stack trace, where sd_notify(3) returns an error and the
    /// service goes on.
    /// </summary>
    public static SdNotify Create(string name)
    {
        UnixDomainSocketEndPoint endpoint;
        try
        {
            // Linux abstract socket names start with a NUL byte; systemd writes it as '@'.
            endpoint = new UnixDomainSocketEndPoint(name.StartsWith('@') ? "\0" + name[1..] : name);
        }
        catch (ArgumentOutOfRangeException)
        {
            return new SdNotify($"NOTIFY_SOCKET '{name}' is longer than a Unix socket's address may be");
        }
        // Not blocking: a manager that stops reading (its socket's queue full) held every send, and with it a stop waiting
        // to say STOPPING=1, a tunnel's change of state, the watchdog's thread. Such a notification is dropped, and said so.
        return new SdNotify(new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified) { Blocking = false }, endpoint);
    }

    /// <summary>
    /// How often to send <c>WATCHDOG=1</c>: <c>WATCHDOG_USEC</c> × <paramref name="factor"/>, or null when no
    /// watchdog is asked for (or it is meant for another process, <c>WATCHDOG_PID</c>). Within what a timer can wait, 1 ms
    /// to <see cref="Passage.Configuration.Duration.Max"/>: a share under a millisecond, or one past the timer's longest
    /// (about 49.7 days), made the timer throw, so that the watchdog was never fed.
    /// </summary>
    public static TimeSpan? WatchdogInterval(double factor)
    {
        if (Environment.GetEnvironmentVariable("WATCHDOG_USEC") is not { Length: > 0 } text
            || !long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var microseconds) || microseconds <= 0)
        {
            return null;
        }
        if (Environment.GetEnvironmentVariable("WATCHDOG_PID") is { Length: > 0 } pid && pid != Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
        {
            return null;
        }
        return TimeSpan.FromMicroseconds(Math.Clamp(microseconds * factor, 1000, Passage.Configuration.Duration.Max.TotalMicroseconds));
    }

    /// <summary>Sends <paramref name="state"/> (newline-separated assignments). Null on success, else the error.</summary>
    public string? Send(string state)
    {
        if (_socket is null || _endpoint is null)
        {
            return _problem;
        }
        try
        {
            _socket.SendTo(Encoding.UTF8.GetBytes(state), SocketFlags.None, _endpoint);
            return null;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.WouldBlock)
        {
            return "the service manager is not reading its notifications (its socket's queue is full); this one was dropped";
        }
        catch (SocketException e)
        {
            return e.Message;
        }
    }

    /// <summary>A STATUS= value on one line.</summary>
    public static string Status(string text) => "STATUS=" + text.ReplaceLineEndings(" ");

    public void Dispose() => _socket?.Dispose();
}
