using Passage.Relay.Passthrough;

namespace Passage.Tests.Relay.Passthrough;

public sealed class TlsAlertTests
{
    [Fact]
    public void Named_alerts_are_fatal_alert_records()
    {
        // RFC 8446 §5.1 header (alert, 0x0303, length 2) and §6 body (fatal, description).
        Assert.Equal(new byte[] { 21, 3, 3, 0, 2, 2, 112 }, TlsAlert.UnrecognizedName.ToArray());
        Assert.Equal(new byte[] { 21, 3, 3, 0, 2, 2, 40 }, TlsAlert.HandshakeFailure.ToArray());
        Assert.Equal(new byte[] { 21, 3, 3, 0, 2, 2, 50 }, TlsAlert.DecodeError.ToArray());
        Assert.Equal(new byte[] { 21, 3, 3, 0, 2, 2, 80 }, TlsAlert.InternalError.ToArray());
        Assert.Equal(new byte[] { 21, 3, 3, 0, 2, 2, 70 }, TlsAlert.ProtocolVersion.ToArray());
    }

    [Theory]
    [InlineData((byte)TlsAlertDescription.UnexpectedMessage)]
    [InlineData((byte)TlsAlertDescription.RecordOverflow)]
    [InlineData((byte)TlsAlertDescription.HandshakeFailure)]
    [InlineData((byte)TlsAlertDescription.IllegalParameter)]
    [InlineData((byte)TlsAlertDescription.DecodeError)]
    [InlineData((byte)TlsAlertDescription.ProtocolVersion)]
    [InlineData((byte)TlsAlertDescription.InternalError)]
    [InlineData((byte)TlsAlertDescription.UnrecognizedName)]
    public void Fatal_builds_the_record_for_any_description(byte description)
    {
        Assert.Equal(new byte[] { 21, 3, 3, 0, 2, 2, description }, TlsAlert.Fatal((TlsAlertDescription)description).ToArray());
    }

    [Fact]
    public void Common_alerts_are_cached()
    {
        Assert.True(TlsAlert.Fatal(TlsAlertDescription.DecodeError).Equals(TlsAlert.DecodeError));
    }
}
