using System.Text;
using Passage.Identity;

namespace Passage.Tests.Identity;

public sealed class Base32Tests
{
    /// <summary>RFC 4648 §10, lower-cased and with the padding removed.</summary>
    public static TheoryData<string, string> Rfc4648Vectors => new()
    {
        { "", "" },
        { "f", "my" },
        { "fo", "mzxq" },
        { "foo", "mzxw6" },
        { "foob", "mzxw6yq" },
        { "fooba", "mzxw6ytb" },
        { "foobar", "mzxw6ytboi" },
    };

    [Theory]
    [MemberData(nameof(Rfc4648Vectors))]
    public void EncodesRfc4648Vectors(string input, string expected) =>
        Assert.Equal(expected, Base32.Encode(Encoding.ASCII.GetBytes(input)));

    [Theory]
    [MemberData(nameof(Rfc4648Vectors))]
    public void DecodesRfc4648VectorsInEitherCase(string expected, string text)
    {
        Assert.True(Base32.TryDecode(text, out var lower));
        Assert.Equal(expected, Encoding.ASCII.GetString(lower));
        Assert.True(Base32.TryDecode(text.ToUpperInvariant(), out var upper));
        Assert.Equal(expected, Encoding.ASCII.GetString(upper));
    }

    [Theory]
    [InlineData("my======")] // RFC 4648 padding is not part of node IDs
    [InlineData("mzxw6===")]
    [InlineData("mzxw6ytboi======")]
    [InlineData("mzxw1")] // '1', '8', '9', '0' are not in the alphabet
    [InlineData("mzxw8")]
    [InlineData("mzx w6")]
    [InlineData("mzxw6-")]
    [InlineData("m")] // lengths 1, 3, 6 (mod 8) encode no byte string
    [InlineData("mzx")]
    [InlineData("mzxw6y")]
    [InlineData("mz")] // 'z' leaves non-zero bits in the unused tail: "my" is the only text for "f"
    [InlineData("mzxw6ytboj")]
    public void RefusesNonCanonicalOrInvalidTextWithoutThrowing(string text)
    {
        Assert.False(Base32.TryDecode(text, out var data));
        Assert.Null(data);
    }

    [Fact]
    public void RoundTripsEveryLengthUpTo64()
    {
        var random = new Random(4648);
        for (var length = 0; length <= 64; length++)
        {
            var data = new byte[length];
            random.NextBytes(data);
            var text = Base32.Encode(data);
            Assert.Equal(Base32.GetEncodedLength(length), text.Length);
            Assert.Matches("^[a-z2-7]*$", text);
            Assert.True(Base32.TryDecode(text, out var decoded));
            Assert.Equal(data, decoded);
        }
    }
}
