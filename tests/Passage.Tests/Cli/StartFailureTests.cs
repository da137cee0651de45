using System.Net.Sockets;
using System.Security.Cryptography;
using Passage.Cli.Hosting;

namespace Passage.Tests.Cli;

/// <summary>
/// Which exceptions a start of the relay, the client or the tunnel reports as one line (<c>Cannot start: CAUSE</c>, exit
/// 1) and which it lets through with their stack. The three commands used to differ: a key OpenSSL refused
/// (<see cref="CryptographicException"/>) was one line from the tunnel but a stack from the relay, and the client said
/// only socket and file errors as one line.
/// </summary>
public sealed class StartFailureTests
{
    public static TheoryData<Exception> FromTheEnvironment() =>
    [
        new SocketException((int)SocketError.AddressNotAvailable),
        new SocketException((int)SocketError.AddressAlreadyInUse),
        new IOException("passthrough cannot listen on 127.0.0.1:9443: Address already in use"),
        new FileNotFoundException("'relay.pem' does not exist."),
        new InvalidDataException("relay.key: 'relay.pem' is not a PEM file"),
        new UnauthorizedAccessException("Access to the path 'relay.pem' is denied."),
        new CryptographicException("error:1E08010C:DECODER routines::unsupported"),
    ];

    [Theory]
    [MemberData(nameof(FromTheEnvironment))]
    public void A_cause_outside_the_program_is_one_line(Exception exception) =>
        Assert.True(StartFailure.IsEnvironmental(exception), exception.GetType().Name);

    public static TheoryData<Exception> Bugs() =>
    [
        new ArgumentException("options"),
        new ArgumentNullException("options"),
        new InvalidOperationException(),
        new NullReferenceException(),
        new ObjectDisposedException("host"),
    ];

    [Theory]
    [MemberData(nameof(Bugs))]
    public void A_bug_keeps_its_stack(Exception exception) =>
        Assert.False(StartFailure.IsEnvironmental(exception), exception.GetType().Name);
}
