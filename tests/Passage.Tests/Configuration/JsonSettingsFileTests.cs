using System.Text;
using Passage.Configuration;

namespace Passage.Tests.Configuration;

public sealed class JsonSettingsFileTests
{
    /// <summary>
    /// A file is decoded by its byte order mark, as the configuration's JSON provider decodes it: a file saved as UTF-16
    /// or UTF-32 was read before the keys were checked, and must not be refused at its first byte now.
    /// </summary>
    [Theory]
    [InlineData("utf-8")]
    [InlineData("utf-16")]
    [InlineData("utf-16BE")]
    [InlineData("utf-32")]
    public void A_file_with_a_byte_order_mark_is_read_in_its_encoding(string encoding)
    {
        var json = """{ "relay": { "idleTimeout": "5s", "insecurePlain": true } }""";
        var configuration = JsonSettingsFile.Read([.. Encoding.GetEncoding(encoding).GetPreamble(), .. Encoding.GetEncoding(encoding).GetBytes(json)]);
        Assert.Equal("5s", configuration["relay:idleTimeout"]);
        Assert.Equal("true", configuration["relay:insecurePlain"]);
    }

    [Fact]
    public void A_key_written_twice_in_a_file_saved_as_UTF_16_is_still_named()
    {
        var json = """{ "relay": { "idleTimeout": "5s" }, "Relay": { "idleTimeout": "6s" } }""";
        var e = Assert.Throws<DuplicateSettingException>(() => JsonSettingsFile.Read([.. Encoding.Unicode.GetPreamble(), .. Encoding.Unicode.GetBytes(json)]));
        Assert.Equal("Relay", e.Key);
    }
}
