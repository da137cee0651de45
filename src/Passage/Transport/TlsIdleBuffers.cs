using System.Net.Security;
using System.Reflection;
using System.Runtime.InteropServices;

namespace Passage.Transport;

/// <summary>
/// Lets OpenSSL give back a TLS connection's record buffers whenever they are empty
/// (SSL_MODE_RELEASE_BUFFERS, which nginx and HAProxy set), for an <see cref="SslStream"/> on Linux:
/// the runtime does not set it, and an idle TLS tunnel then keeps a read and a write buffer of
/// about 16 KiB each for the rest of its life.
/// </summary>
/// <remarks>
/// <para>Measured with bench/run's idle ramp (TLS CONNECT tunnels, RSS slope over 1,000-5,000 open
/// tunnels): 28-29.6 KiB per tunnel without, 19.0 with (HAProxy terminating TLS: 17.6); bulk
/// throughput through a tunnel did not change (a malloc and a free per record).</para>
/// <para>SslStream does not expose its OpenSSL handle, so this reaches it by reflection (the
/// stream's security context, which on Linux is the SSL handle itself) and calls SSL_ctrl from the
/// very libssl the process has mapped. Whatever does not look exactly as expected (another runtime
/// layout, another OS, no or two libssl images) turns it off and nothing else changes:
/// <see cref="Apply"/> then returns false. A test checks that it takes effect on this runtime, so a
/// runtime update that moves the field is noticed.</para>
/// </remarks>
internal static unsafe class TlsIdleBuffers
{
    private const int SSL_CTRL_MODE = 33;
    private const nint SSL_MODE_RELEASE_BUFFERS = 0x10;

    private static readonly FieldInfo? s_context = OperatingSystem.IsLinux()
        ? typeof(SslStream).GetField("_securityContext", BindingFlags.Instance | BindingFlags.NonPublic)
        : null;

    // Found on first use, after a handshake has made the runtime load libssl.
    private static readonly Lazy<nint> s_sslCtrl = new(FindSslCtrl);

    /// <summary>
    /// Sets SSL_MODE_RELEASE_BUFFERS on <paramref name="stream"/>'s connection; call it after the
    /// handshake, before the stream is read or written from two places at once. False when it could
    /// not be done here (nothing changed then).
    /// </summary>
    public static bool Apply(SslStream stream) => Control(stream, SSL_MODE_RELEASE_BUFFERS) is { } mode && (mode & SSL_MODE_RELEASE_BUFFERS) != 0;

    /// <summary>The connection's OpenSSL mode bits, or null where they cannot be reached (for tests).</summary>
    internal static long? Mode(SslStream stream) => Control(stream, 0);

    /// <summary>SSL_ctrl(SSL_CTRL_MODE, <paramref name="add"/>): adds mode bits and returns them all.</summary>
    private static long? Control(SslStream stream, nint add)
    {
        if (s_context?.GetValue(stream) is not SafeHandle { IsInvalid: false } handle
            || handle.GetType().FullName != "Microsoft.Win32.SafeHandles.SafeSslHandle")
        {
            return null;
        }
        var sslCtrl = s_sslCtrl.Value;
        if (sslCtrl == 0)
        {
            return null;
        }
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return ((delegate* unmanaged<nint, int, nint, nint, nint>)sslCtrl)(handle.DangerousGetHandle(), SSL_CTRL_MODE, add, 0);
        }
        catch (ObjectDisposedException)
        {
            return null;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>SSL_ctrl of the one libssl image mapped into this process, or 0.</summary>
    private static nint FindSslCtrl()
    {
        string? path = null;
        try
        {
            foreach (var line in File.ReadLines("/proc/self/maps"))
            {
                var slash = line.IndexOf('/', StringComparison.Ordinal);
                if (slash < 0 || !Path.GetFileName(line.AsSpan(slash)).StartsWith("libssl.so", StringComparison.Ordinal))
                {
                    continue;
                }
                var mapped = line[slash..];
                if (path is not null && path != mapped)
                {
                    // Two different libssl images: which one the runtime uses is not known here.
                    return 0;
                }
                path = mapped;
            }
        }
        catch (IOException)
        {
            return 0;
        }
        return path is not null && NativeLibrary.TryLoad(path, out var library) && NativeLibrary.TryGetExport(library, "SSL_ctrl", out var sslCtrl)
            ? sslCtrl
            : 0;
    }
}
