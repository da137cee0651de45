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

    /// <summary>
    /// Bytes that are no text in the encoding the byte order mark names (a lone surrogate, half a character at the end, a
    /// UTF-32 value beyond Unicode) read as U+FFFD: they are refused, naming the line and the byte in it as the file holds them.
    /// </summary>
    [Theory]
    [InlineData("utf-16", new byte[] { 0x00, 0xD8 }, 25)]
    [InlineData("utf-16BE", new byte[] { 0xDC, 0x00 }, 25)]
    [InlineData("utf-16", new byte[] { 0x41 }, 25)]
    [InlineData("utf-32", new byte[] { 0x00, 0x00, 0x11, 0x00 }, 49)]
    [InlineData("utf-32BE", new byte[] { 0x00, 0x00, 0xD8, 0x00 }, 49)]
    public void Bytes_that_are_no_text_in_the_files_encoding_are_refused_naming_where(string name, byte[] bad, int at)
    {
        var encoding = Encoding.GetEncoding(name);
        byte[] json = [.. encoding.GetPreamble(), .. encoding.GetBytes("{\n  \"relay\": {\n    \"x\": \"ab"), .. bad, .. (bad.Length == 1 ? Array.Empty<byte>() : encoding.GetBytes("\" } }"))];

        var e = Assert.Throws<InvalidTextException>(() => JsonSettingsFile.Read(json));

        var kind = name[..6].ToUpperInvariant();
        Assert.Equal($"not valid {kind}: line 3, byte {at} is no {kind} text (its byte order mark says {kind})", e.Message);
    }

    /// <summary>Without a byte order mark a file is UTF-8; a byte that is none, on the first line, counts from its start.</summary>
    [Fact]
    public void A_byte_that_is_no_utf8_is_refused_naming_where()
    {
        var e = Assert.Throws<InvalidTextException>(() => JsonSettingsFile.Parse([.. "{ \"a\": \"caf"u8, 0xE9, .. "\" }"u8]));
        Assert.StartsWith("not valid UTF-8: line 1, byte 12 is no UTF-8 text; save the file as UTF-8", e.Message);
    }

    /// <summary>
    /// A <c>\u</c> escape of half a surrogate pair is JSON by its grammar, but no character: reading the string threw, and
    /// every command given the file failed with an unhandled exception. It is refused, naming where the escape begins as
    /// the file holds it (in a key too); a whole pair, and an escaped backslash before "u", are text.
    /// </summary>
    [Theory]
    [InlineData("utf-8", "\"x\": \"ab\\ud800\"", 13)]
    [InlineData("utf-8", "\"x\": \"ab\\udc00cd\"", 13)]
    [InlineData("utf-8", "\"x\": \"é\\ud83d\\u0041\"", 13)]
    [InlineData("utf-8", "\"\\ud800\": 1", 6)]
    [InlineData("utf-16", "\"x\": \"ab\\ud800\"", 25)]
    public void An_escape_of_half_a_surrogate_pair_is_refused_naming_where(string name, string member, int at)
    {
        var encoding = Encoding.GetEncoding(name);
        byte[] json = [.. name == "utf-8" ? [] : encoding.GetPreamble(), .. encoding.GetBytes($"{{\n  \"relay\": {{\n    {member} }} }}")];

        var e = Assert.Throws<InvalidTextException>(() => JsonSettingsFile.Read(json));

        Assert.Equal($"not valid text: line 3, byte {at} begins a \\u escape of half a UTF-16 surrogate pair, which is no character", e.Message);
        Assert.Throws<InvalidTextException>(() => JsonSettingsFile.Parse(json).Dispose());
    }

    [Fact]
    public void An_escaped_surrogate_pair_and_an_escaped_backslash_before_u_are_text()
    {
        var configuration = JsonSettingsFile.Read("""{ "relay": { "a": "\ud83d\ude00", "b": "\\ud800", "c": "\u00e9" } }"""u8.ToArray());
        Assert.Equal("\U0001F600", configuration["relay:a"]);
        Assert.Equal("\\ud800", configuration["relay:b"]);
        Assert.Equal("é", configuration["relay:c"]);
    }
}
