using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Configuration;

namespace Passage.Configuration;

/// <summary>
/// A settings file's JSON (comments and trailing commas allowed) as configuration keyed as the readers ask for it
/// (<c>relay:idleTimeout</c>), read by the framework's JSON provider with four corrections: bytes that are no text are
/// refused (<see cref="InvalidTextException"/>), a key written twice, a section's as well as a value's, is refused
/// (<see cref="DuplicateSettingException"/>), so is a key holding a colon, which the provider reads as a path
/// (<see cref="KeyWithColonException"/>), and <c>true</c> and <c>false</c> read as written.
/// </summary>
/// <remarks>
/// The provider reads bytes that are no UTF-8 as U+FFFD, so that a password saved in Latin-1 was another secret than the
/// one written. It refuses a value's key written twice, but merges two objects under one key: <c>"relay"</c> written twice
/// took settings from both, which no JSON reader does (they keep the last) and no operator meant. It also stores a JSON
/// boolean as .NET spells it, <c>True</c>, so that an error quoted a value the file does not hold
/// (<c>relay.idleTimeout: 'True' is not a duration</c>).
/// </remarks>
internal static class JsonSettingsFile
{
    private static readonly JsonDocumentOptions s_options = new() { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };
    private static readonly JsonReaderOptions s_readerOptions = new() { CommentHandling = s_options.CommentHandling, AllowTrailingCommas = s_options.AllowTrailingCommas };

    /// <summary>
    /// The configuration <paramref name="json"/> holds. Bytes that are no text throw <see cref="InvalidTextException"/>;
    /// broken JSON a <see cref="JsonException"/> with its position in the file (<see cref="Parse(byte[])"/>), or, from the
    /// provider, a <see cref="FormatException"/> for a top level that is no object; a key written twice throws
    /// <see cref="DuplicateSettingException"/>, a key holding a colon <see cref="KeyWithColonException"/>.
    /// </summary>
    public static IConfiguration Read(byte[] json)
    {
        ArgumentNullException.ThrowIfNull(json);
        var booleans = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        var text = Decode(json);
        using (var document = Parse(text))
        {
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                Visit(document.RootElement, null, new HashSet<string>(StringComparer.OrdinalIgnoreCase), booleans);
            }
        }
        // The provider is given the text as decoded here, as UTF-8: it would decode the file's bytes on its own, and put
        // U+FFFD where they are no text.
        return new ConfigurationBuilder()
            .AddJsonStream(new MemoryStream(new UTF8Encoding(false).GetBytes(text.Text), writable: false))
            .AddInMemoryCollection(booleans)
            .Build();
    }

    /// <summary>
    /// The document <paramref name="json"/> holds, its text decoded by its byte order mark as the provider decodes it (UTF-8
    /// without one): a file saved as UTF-16, as some editors and Windows tools write JSON, is read, not refused at its first
    /// byte. Comments and trailing commas are allowed, as the provider allows them.
    /// </summary>
    /// <exception cref="InvalidTextException">The file holds bytes that are no text in its encoding, or a <c>\u</c> escape of
    /// half a surrogate pair.</exception>
    /// <exception cref="JsonException">Broken JSON; its position is that in the file as saved (see <see cref="Parse(SettingsText)"/>).</exception>
    public static JsonDocument Parse(byte[] json) => Parse(Decode(json));

    /// <summary>
    /// The document <paramref name="text"/> holds. The JSON reader counts a broken document's position in the bytes of its
    /// UTF-8, which are the file's own only for a UTF-8 file without a byte order mark: the exception thrown counts the
    /// bytes of the line as the file holds them, its byte order mark included on the first line, so that the position
    /// given for a file saved as UTF-16 is where the problem is in it.
    /// </summary>
    private static JsonDocument Parse(SettingsText text)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text.Text, s_options);
        }
        catch (JsonException e) when (e.LineNumber is { } line && e.BytePositionInLine is { } position)
        {
            // The message repeats the position as the reader counted it ("... LineNumber: 2 | BytePositionInLine: 13.").
            var cut = e.Message.IndexOf(" LineNumber:", StringComparison.Ordinal);
            throw new JsonException(cut > 0 ? e.Message[..cut] : e.Message, e.Path, line, text.FileBytesInLine(line, position), e);
        }
        if (text.Text.Contains("\\u", StringComparison.Ordinal))
        {
            try
            {
                CheckEscapes(text);
            }
            catch
            {
                document.Dispose();
                throw;
            }
        }
        return document;
    }

    /// <summary>
    /// Refuses a <c>\u</c> escape that is half a UTF-16 surrogate pair (<c>"\ud800"</c>), naming where it begins as the file
    /// holds it. JSON's grammar allows one, but it is no character: the document's reader throws when the string is read,
    /// and a settings file holding one failed every command that read it with an unhandled exception.
    /// </summary>
    /// <exception cref="InvalidTextException">A string or a key holds such an escape.</exception>
    private static void CheckEscapes(SettingsText text)
    {
        var utf8 = Encoding.UTF8.GetBytes(text.Text);
        var reader = new Utf8JsonReader(utf8, s_readerOptions);
        while (reader.Read())
        {
            if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped
                && LoneSurrogate(reader.ValueSpan) is var at and >= 0)
            {
                // A string's token starts at its opening quote; the position is counted as the JSON reader counts it, then in
                // the file's encoding. The escape is not quoted: it may be part of a secret.
                var offset = (int)reader.TokenStartIndex + 1 + at;
                var lineStart = utf8.AsSpan(0, offset).LastIndexOf((byte)'\n') + 1;
                var line = utf8.AsSpan(0, lineStart).Count((byte)'\n');
                throw new InvalidTextException(string.Create(CultureInfo.InvariantCulture,
                    $"not valid text: line {line + 1}, byte {text.FileBytesInLine(line, offset - lineStart) + 1} begins a \\u escape of half a UTF-16 surrogate pair, which is no character"));
            }
        }
    }

    /// <summary>
    /// Where in <paramref name="escaped"/>, a JSON string as written (its escapes well formed), the first <c>\u</c> escape
    /// of a UTF-16 surrogate not in a pair begins; -1 when none does.
    /// </summary>
    private static int LoneSurrogate(ReadOnlySpan<byte> escaped)
    {
        for (var i = 0; i < escaped.Length; i++)
        {
            if (escaped[i] != (byte)'\\')
            {
                continue;
            }
            if (escaped[i + 1] != (byte)'u')
            {
                i++;
                continue;
            }
            var unit = Unit(escaped.Slice(i + 2, 4));
            if (char.IsHighSurrogate(unit) && i + 12 <= escaped.Length && escaped[i + 6] == (byte)'\\' && escaped[i + 7] == (byte)'u'
                && char.IsLowSurrogate(Unit(escaped.Slice(i + 8, 4))))
            {
                i += 11;
                continue;
            }
            if (char.IsSurrogate(unit))
            {
                return i;
            }
            i += 5;
        }
        return -1;

        static char Unit(ReadOnlySpan<byte> hex) => (char)ushort.Parse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The text of <paramref name="json"/>, decoded by its byte order mark as a <see cref="StreamReader"/> decodes it: UTF-8,
    /// UTF-16 or UTF-32, UTF-8 without one.
    /// </summary>
    /// <exception cref="InvalidTextException">Some bytes are no text in that encoding. Decoded as the provider decodes them,
    /// they would read as U+FFFD: a password written in Latin-1 (<c>caf\xe9</c>) would be another secret than the one
    /// written, without a word.</exception>
    internal static SettingsText Decode(byte[] json)
    {
        ArgumentNullException.ThrowIfNull(json);
        var (encoding, preamble) = json switch
        {
            [0xEF, 0xBB, 0xBF, ..] => ((Encoding)new UTF8Encoding(false, true), 3),
            [0xFE, 0xFF, ..] => (new UnicodeEncoding(bigEndian: true, byteOrderMark: false, throwOnInvalidBytes: true), 2),
            [0xFF, 0xFE, 0, 0, ..] => (new UTF32Encoding(bigEndian: false, byteOrderMark: false, throwOnInvalidCharacters: true), 4),
            [0xFF, 0xFE, ..] => (new UnicodeEncoding(bigEndian: false, byteOrderMark: false, throwOnInvalidBytes: true), 2),
            [0, 0, 0xFE, 0xFF, ..] => (new UTF32Encoding(bigEndian: true, byteOrderMark: false, throwOnInvalidCharacters: true), 4),
            _ => (new UTF8Encoding(false, true), 0),
        };
        try
        {
            return new SettingsText(encoding.GetString(json, preamble, json.Length - preamble), encoding, preamble);
        }
        catch (DecoderFallbackException)
        {
            // The exception's index is not where the bytes are in every encoding (UTF-32's is 0): found again, by character.
            var at = preamble + FirstInvalid(json.AsSpan(preamble), encoding);
            var before = encoding.GetString(json, preamble, at - preamble);
            var line = before.Count(c => c == '\n');
            var lineStart = line == 0 ? 0 : preamble + encoding.GetByteCount(before.AsSpan(0, before.LastIndexOf('\n') + 1));
            var name = SettingsText.NameOf(encoding);
            // The bytes are not quoted: they may be part of a secret.
            throw new InvalidTextException(string.Create(CultureInfo.InvariantCulture, $"not valid {name}: line {line + 1}, byte {at - lineStart + 1} is no {name} text")
                + (preamble > 0
                    ? $" (its byte order mark says {name})"
                    : "; save the file as UTF-8: text in another encoding (Latin-1, a Windows code page) would read as other characters than were written"));
        }
    }

    /// <summary>The offset of the first bytes in <paramref name="bytes"/> that are no character in <paramref name="encoding"/>; their length when there are none.</summary>
    private static int FirstInvalid(ReadOnlySpan<byte> bytes, Encoding encoding)
    {
        var width = encoding is UTF32Encoding ? 4 : encoding is UnicodeEncoding ? 2 : 1;
        var bigEndian = encoding.CodePage is 1201 or 12001;
        Span<char> units = stackalloc char[2];
        var at = 0;
        while (at < bytes.Length)
        {
            int used;
            if (width == 1)
            {
                if (Rune.DecodeFromUtf8(bytes[at..], out _, out used) != OperationStatus.Done)
                {
                    return at;
                }
            }
            else if (width == 2)
            {
                var count = Math.Min(2, (bytes.Length - at) / 2);
                for (var i = 0; i < count; i++)
                {
                    var unit = bytes.Slice(at + (2 * i), 2);
                    units[i] = (char)(bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(unit) : BinaryPrimitives.ReadUInt16LittleEndian(unit));
                }
                if (count == 0 || Rune.DecodeFromUtf16(units[..count], out _, out var chars) != OperationStatus.Done)
                {
                    return at;
                }
                used = 2 * chars;
            }
            else
            {
                if (bytes.Length - at < 4)
                {
                    return at;
                }
                var value = bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(bytes[at..]) : BinaryPrimitives.ReadUInt32LittleEndian(bytes[at..]);
                if (!Rune.IsValid(value))
                {
                    return at;
                }
                used = 4;
            }
            at += used;
        }
        return at;
    }

    /// <summary>
    /// Checks the keys below <paramref name="element"/> (at <paramref name="path"/>) against those <paramref name="seen"/>
    /// before, and collects its booleans, keyed as the provider keys them.
    /// </summary>
    private static void Visit(JsonElement element, string? path, HashSet<string> seen, Dictionary<string, string?> booleans)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    var key = path is null ? property.Name : ConfigurationPath.Combine(path, property.Name);
                    if (property.Name.Contains(ConfigurationPath.KeyDelimiter, StringComparison.Ordinal))
                    {
                        // The provider reads a name holding a colon as a path ("relay:maxTunnels" is the key of "maxTunnels" in
                        // "relay"): it set a setting the file does not spell, and errors about it named it dotted, as written
                        // nowhere. No setting's name holds one (the user names of a proxy cannot: it is Basic's separator).
                        throw new KeyWithColonException(path, property.Name);
                    }
                    // Keys are case-insensitive ("Relay" and "relay" are one section): the set holds whole keys, as the provider's.
                    if (!seen.Add(key))
                    {
                        throw new DuplicateSettingException(key);
                    }
                    Visit(property.Value, key, seen, booleans);
                }
                break;
            case JsonValueKind.Array:
                var index = 0;
                foreach (var item in element.EnumerateArray())
                {
                    Visit(item, ConfigurationPath.Combine(path!, index.ToString(System.Globalization.CultureInfo.InvariantCulture)), seen, booleans);
                    index++;
                }
                break;
            case JsonValueKind.True or JsonValueKind.False:
                booleans[path!] = element.GetRawText();
                break;
        }
    }
}

/// <summary>A settings file that writes <see cref="Key"/> twice.</summary>
/// <param name="key">The key as configuration names it: <c>relay:connect</c>.</param>
internal sealed class DuplicateSettingException(string key) : FormatException($"{SettingsReader.Display(key)} is written twice")
{
    /// <summary>The key written twice, as configuration names it (<c>relay:connect</c>).</summary>
    public string Key { get; } = key;
}

/// <summary>A settings file that writes a key holding a colon, which the configuration would read as a path.</summary>
/// <param name="parent">The key of the object it is in, as configuration names it (<c>relay</c>); null at the top.</param>
/// <param name="name">The key as the file writes it: <c>idle:Timeout</c>.</param>
/// <remarks>
/// A section's or a setting's name is named whole, as the file writes it. A map entry's name (below a setting:
/// <c>client.httpUsers</c>) is named up to its colon: a proxy user written as the flag writes one, <c>alice:secret</c>,
/// holds a password after it, which no error echoes.
/// </remarks>
internal sealed class KeyWithColonException(string? parent, string name)
    : FormatException($"{WrittenOf(parent, name)}: a key cannot hold a colon")
{
    /// <summary>
    /// The key as errors name it, the file's spelling quoted below its object's dotted key: <c>relay."idle:Timeout"</c>;
    /// a map entry's cut after its colon, <c>client.httpUsers."alice:..."</c> (<see cref="IsEntry"/>).
    /// </summary>
    public string Written { get; } = WrittenOf(parent, name);

    /// <summary>
    /// What the configuration would have read it as, dotted as errors show keys: <c>relay.idle.Timeout</c>; for a map
    /// entry's name, the path it would be read below, <c>client.httpUsers.alice</c>.
    /// </summary>
    public string Path { get; } = SettingsReader.Display(parent is null ? name : ConfigurationPath.Combine(parent, Shown(parent, name)));

    /// <summary>Whether the key is a map entry's name, below a setting, of which only what comes before the colon is shown.</summary>
    public bool IsEntry { get; } = IsEntryName(parent);

    private static bool IsEntryName(string? parent) => parent is not null && parent.Contains(ConfigurationPath.KeyDelimiter, StringComparison.Ordinal);

    /// <summary>The part of <paramref name="name"/> errors show: whole, or a map entry's up to its colon.</summary>
    private static string Shown(string? parent, string name) =>
        IsEntryName(parent) ? name[..name.IndexOf(':', StringComparison.Ordinal)] : name;

    private static string WrittenOf(string? parent, string name) =>
        (parent is null ? "" : SettingsReader.Display(parent) + ".") + "\"" + (IsEntryName(parent) ? Shown(parent, name) + ":..." : name) + "\"";
}

/// <summary>A settings file's text, decoded.</summary>
/// <param name="Text">The text.</param>
/// <param name="Encoding">The encoding it was saved in, as its byte order mark says (UTF-8 without one).</param>
/// <param name="Preamble">The length of its byte order mark, 0 without one.</param>
internal sealed record SettingsText(string Text, Encoding Encoding, int Preamble)
{
    /// <summary>The name of <paramref name="encoding"/> as errors give it: <c>UTF-8</c>, <c>UTF-16</c>, <c>UTF-32</c>.</summary>
    public static string NameOf(Encoding encoding) => encoding switch
    {
        UnicodeEncoding => "UTF-16",
        UTF32Encoding => "UTF-32",
        _ => "UTF-8",
    };

    /// <summary>
    /// How many bytes of line <paramref name="line"/> (0-based, lines ending at <c>\n</c> as the JSON reader counts them) the
    /// file holds before the character that starts at <paramref name="utf8Bytes"/> bytes into that line's UTF-8; the byte
    /// order mark is counted on the first line.
    /// </summary>
    public long FileBytesInLine(long line, long utf8Bytes)
    {
        var start = 0;
        for (var i = 0L; i < line && start < Text.Length; i++)
        {
            var end = Text.IndexOf('\n', start);
            start = end < 0 ? Text.Length : end + 1;
        }
        var chars = 0;
        for (long counted = 0; counted < utf8Bytes && start + chars < Text.Length;)
        {
            var rune = Rune.GetRuneAt(Text, start + chars);
            counted += rune.Utf8SequenceLength;
            chars += rune.Utf16SequenceLength;
        }
        return Encoding.GetByteCount(Text.AsSpan(start, chars)) + (line == 0 ? Preamble : 0);
    }
}

/// <summary>
/// A settings file holding bytes that are no text in its encoding, or a <c>\u</c> escape that is no character. The message
/// says where, not which bytes.
/// </summary>
internal sealed class InvalidTextException(string message) : FormatException(message);
