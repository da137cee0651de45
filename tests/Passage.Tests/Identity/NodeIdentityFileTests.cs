using System.Runtime.Versioning;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Passage.Identity;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Identity;

/// <summary>Saving, loading and reading IDs from identity, key and certificate files.</summary>
[UnsupportedOSPlatform("windows")] // file modes are part of the contract
public sealed class NodeIdentityFileTests : IDisposable
{
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly TemporaryDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void SavedIdentityLoadsWithTheSameIdCertificateAndKey()
    {
        var path = _directory.File("node.pem");
        using var saved = NodeIdentity.Create(["relay.example", "192.0.2.1", "2001:db8::1"]);
        saved.Save(path, overwrite: false);

        using var loaded = NodeIdentity.Load(path);

        Assert.Equal(saved.NodeId, loaded.NodeId);
        Assert.Equal(saved.Certificate.RawData, loaded.Certificate.RawData);
        Assert.True(loaded.Certificate.HasPrivateKey);
        using var savedKey = saved.Certificate.GetECDsaPrivateKey()!;
        using var loadedKey = loaded.Certificate.GetECDsaPrivateKey()!;
        Assert.Equal(savedKey.ExportParameters(true).D, loadedKey.ExportParameters(true).D);
        var text = File.ReadAllText(path);
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----\n", text, StringComparison.Ordinal);
        Assert.Contains("-----BEGIN CERTIFICATE-----\n", text, StringComparison.Ordinal);
    }

    [Fact]
    public void CreatedCertificateHasTheAgreedShape()
    {
        using var identity = NodeIdentity.Create(["relay.example", "192.0.2.1"]);
        var certificate = identity.Certificate;

        Assert.Equal($"CN=passage-{identity.NodeId.ToString()[..16]}", certificate.Subject);
        Assert.Equal(certificate.Subject, certificate.Issuer);
        var keyUsage = certificate.Extensions.OfType<X509KeyUsageExtension>().Single();
        Assert.True(keyUsage.Critical);
        Assert.Equal(X509KeyUsageFlags.DigitalSignature, keyUsage.KeyUsages);
        var usages = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().Single().EnhancedKeyUsages;
        Assert.Equal(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"], usages.Cast<Oid>().Select(oid => oid.Value!).ToArray());
        Assert.False(certificate.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
        var names = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Equal(["relay.example"], names.EnumerateDnsNames().ToArray());
        Assert.Equal(["192.0.2.1"], names.EnumerateIPAddresses().Select(ip => ip.ToString()).ToArray());
        Assert.InRange(certificate.NotBefore.ToUniversalTime(), DateTime.UtcNow.AddDays(-1).AddMinutes(-5), DateTime.UtcNow.AddDays(-1).AddMinutes(5));
        Assert.True(certificate.NotAfter.ToUniversalTime() > DateTime.UtcNow.AddYears(20).AddDays(-1));
        Assert.Equal(256, certificate.GetECDsaPublicKey()!.KeySize);
    }

    [Fact]
    public void CreateWithoutNamesHasNoAlternativeNamesAndRefusesBadNames()
    {
        using var identity = NodeIdentity.Create();
        Assert.Empty(identity.Certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>());

        var error = Assert.Throws<ArgumentException>(() => NodeIdentity.Create(["not a name"]));
        Assert.Contains("'not a name'", error.Message, StringComparison.Ordinal);

        // IPAddress.TryParse reads both as ::1; written so, a name is a mistake to say, not an address to guess at.
        Assert.Contains("'[::1]:80'", Assert.Throws<ArgumentException>(() => NodeIdentity.Create(["[::1]:80"])).Message, StringComparison.Ordinal);
        Assert.Contains("'::1%'", Assert.Throws<ArgumentException>(() => NodeIdentity.Create(["::1%"])).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void SavedFileIsOwnerReadWriteOnly()
    {
        var path = _directory.File("node.pem");
        using var identity = NodeIdentity.Create();

        identity.Save(path, overwrite: false);

        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public void RefusesToOverwriteAndLeavesTheFileUntouched()
    {
        var path = _directory.File("node.pem");
        File.WriteAllText(path, "precious");
        using var identity = NodeIdentity.Create();

        var error = Assert.Throws<IOException>(() => identity.Save(path, overwrite: false));

        Assert.Contains(path, error.Message, StringComparison.Ordinal);
        Assert.Contains("already exists", error.Message, StringComparison.Ordinal);
        Assert.Equal("precious", File.ReadAllText(path));
    }

    [Fact]
    public void OverwriteReplacesTheFileWith0600AndLeavesNoTemporaryFile()
    {
        var path = _directory.File("node.pem");
        File.WriteAllText(path, "old");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        using var identity = NodeIdentity.Create();

        identity.Save(path, overwrite: true);

        Assert.Equal(identity.NodeId, NodeIdentity.ReadNodeId(path));
        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(path));
        Assert.Equal(["node.pem"], Directory.GetFiles(_directory.Path).Select(file => Path.GetFileName(file)!).ToArray());
    }

    /// <summary>
    /// Saving over a FIFO (or a device, a socket), directly or through a link, is refused and leaves it as it was: the
    /// rename that replaces a key would otherwise put a key file where it was (<c>/dev/null</c>, for a save run as root).
    /// </summary>
    [Fact]
    public void OverwriteRefusesAFifoAndLeavesIt()
    {
        var fifo = Configuration.InputFileTests.MakeFifo(_directory.Path, "node.pem");
        var link = _directory.File("link.pem");
        File.CreateSymbolicLink(link, fifo);
        using var identity = NodeIdentity.Create();

        foreach (var path in new[] { fifo, link })
        {
            var error = Assert.Throws<IOException>(() => identity.Save(path, overwrite: true));
            Assert.Contains("it was left untouched", error.Message);
            Assert.Equal(Passage.Configuration.FileKind.Fifo, Passage.Configuration.InputFile.Stat(fifo).Kind);
        }
    }

    [Fact]
    public void LoadOrCreateCreatesOnceThenLoads()
    {
        var path = _directory.File("relay.pem");

        using var first = NodeIdentity.LoadOrCreate(path, ["relay.example"], out var createdFirst);
        using var second = NodeIdentity.LoadOrCreate(path, null, out var createdSecond);

        Assert.True(createdFirst);
        Assert.False(createdSecond);
        Assert.Equal(first.NodeId, second.NodeId);
        Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(path));
    }

    /// <summary>
    /// A new key is not there under its name until it is whole: a process starting with the same key meanwhile finds
    /// nothing (and makes one), not an empty file it would refuse as "not a PEM file". And a key another process put there
    /// in between is left as it is, the one made here refused.
    /// </summary>
    [Fact]
    public void A_new_key_takes_its_name_whole_and_never_replaces_one_that_appeared_meanwhile()
    {
        var path = _directory.File("relay.pem");
        using var mine = NodeIdentity.Create();
        using var theirs = NodeIdentity.Create();
        var seen = new List<string?>();
        SecretFile.t_beforeNamed = fullPath =>
        {
            SecretFile.t_beforeNamed = null;
            seen.Add(File.Exists(fullPath) ? File.ReadAllText(fullPath) : null);
            theirs.Save(fullPath, overwrite: false);
        };
        try
        {
            var refused = Assert.Throws<IOException>(() => mine.Save(path, overwrite: false));
            Assert.Contains("already exists", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            SecretFile.t_beforeNamed = null;
        }

        Assert.Equal([null], seen);
        using var loaded = NodeIdentity.Load(path);
        Assert.Equal(theirs.NodeId, loaded.NodeId);
        Assert.Equal(["relay.pem"], Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
    }

    /// <summary>
    /// Processes starting at once with the same key file, none there yet (replicas of a relay on their first start): each
    /// makes one, one of them takes the name, and every one goes on with that one. They used to find it now and then
    /// half-written (26 of 800 starts, measured here), and failed to start.
    /// </summary>
    [Fact]
    public void Starts_racing_to_create_the_same_key_all_go_on_with_the_one_that_took_the_name()
    {
        for (var round = 0; round < 50; round++)
        {
            var path = _directory.File($"relay{round}.pem");
            using var start = new Barrier(4);
            var ids = new NodeId?[4];
            var errors = new Exception?[4];
            var threads = Enumerable.Range(0, 4).Select(i => new Thread(() =>
            {
                start.SignalAndWait();
                try
                {
                    using var identity = NodeIdentity.LoadOrCreate(path, null, out _);
                    ids[i] = identity.NodeId;
                }
                catch (Exception e) when (e is IOException or InvalidDataException)
                {
                    errors[i] = e;
                }
            })).ToList();
            threads.ForEach(thread => thread.Start());
            threads.ForEach(thread => thread.Join());

            Assert.All(errors, error => Assert.Null(error));
            using var kept = NodeIdentity.Load(path);
            Assert.All(ids, id => Assert.Equal(kept.NodeId, id));
        }
    }

    [Fact]
    public void IdFromCertificateOnlyKeyOnlyPublicKeyOnlyAndBothAgree()
    {
        using var identity = NodeIdentity.Create();
        using var key = identity.Certificate.GetECDsaPrivateKey()!;
        var both = _directory.File("both.pem");
        identity.Save(both, overwrite: false);
        var certificateOnly = Write("cert.pem", identity.Certificate.ExportCertificatePem());
        var keyOnly = Write("key.pem", key.ExportPkcs8PrivateKeyPem());
        var sec1KeyOnly = Write("sec1.pem", key.ExportECPrivateKeyPem());
        var publicOnly = Write("pub.pem", key.ExportSubjectPublicKeyInfoPem());
        var all = Write("all.pem", key.ExportSubjectPublicKeyInfoPem() + "\n" + File.ReadAllText(both));

        foreach (var path in new[] { both, certificateOnly, keyOnly, sec1KeyOnly, publicOnly, all })
        {
            Assert.Equal(identity.NodeId, NodeIdentity.ReadNodeId(path));
        }
    }

    [Fact]
    public void MismatchedKeyAndCertificateAreRefused()
    {
        using var a = NodeIdentity.Create();
        using var b = NodeIdentity.Create();
        using var keyOfB = b.Certificate.GetECDsaPrivateKey()!;
        var path = Write("mixed.pem", keyOfB.ExportPkcs8PrivateKeyPem() + "\n" + a.Certificate.ExportCertificatePem());

        var load = Assert.Throws<InvalidDataException>(() => NodeIdentity.Load(path));
        var read = Assert.Throws<InvalidDataException>(() => NodeIdentity.ReadNodeId(path));

        Assert.Contains("do not match", load.Message, StringComparison.Ordinal);
        Assert.Contains("do not match", read.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A key in a certificate that another key signed loaded, and its ID was printed, but every peer pinning that ID refuses
    /// the certificate (it takes only a node's own, self-signed one) and could only say the node did not present its key:
    /// the file is refused where it is named. Same name as subject and issuer, so only the signature tells.
    /// </summary>
    [Fact]
    public void A_key_in_a_certificate_signed_by_another_key_is_refused_naming_the_file()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var issuer = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var now = DateTimeOffset.UtcNow;
        using var issued = new CertificateRequest("CN=passage-node", key, HashAlgorithmName.SHA256).Create(
            new X500DistinguishedName("CN=passage-node"), X509SignatureGenerator.CreateForECDsa(issuer), now.AddDays(-1), now.AddDays(1), [1, 2, 3]);
        var path = Write("issued.pem", key.ExportPkcs8PrivateKeyPem() + "\n" + issued.ExportCertificatePem());
        var certificateOnly = Write("issued-cert.pem", issued.ExportCertificatePem());

        foreach (var (file, message) in new[]
        {
            (path, Assert.Throws<InvalidDataException>(() => NodeIdentity.Load(path)).Message),
            (path, Assert.Throws<InvalidDataException>(() => NodeIdentity.ReadNodeId(path)).Message),
            (certificateOnly, Assert.Throws<InvalidDataException>(() => NodeIdentity.ReadNodeId(certificateOnly)).Message),
            (path, NodeIdentity.Problem(path)),
        })
        {
            Assert.Contains($"The certificate in '{file}' is not self-signed", message, StringComparison.Ordinal);
        }
        // The key alone still names the node, as it does for a key file without a certificate.
        Assert.Equal(NodeId.FromPublicKey(key), NodeIdentity.ReadNodeId(Write("key.pem", key.ExportPkcs8PrivateKeyPem())));
    }

    [Fact]
    public void MismatchedPublicKeyIsRefused()
    {
        using var a = NodeIdentity.Create();
        using var keyOfB = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var path = Write("mixed.pem", keyOfB.ExportSubjectPublicKeyInfoPem() + "\n" + a.Certificate.ExportCertificatePem());

        Assert.Contains("do not match", Assert.Throws<InvalidDataException>(() => NodeIdentity.ReadNodeId(path)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingFileIsNamed()
    {
        var path = _directory.File("absent.pem");

        Assert.Contains(path, Assert.Throws<FileNotFoundException>(() => NodeIdentity.Load(path)).Message, StringComparison.Ordinal);
        Assert.Contains(path, Assert.Throws<FileNotFoundException>(() => NodeIdentity.ReadNodeId(path)).Message, StringComparison.Ordinal);
        Assert.Throws<FileNotFoundException>(() => NodeIdentity.Load(_directory.File("no/such/dir.pem")));
    }

    [Fact]
    public void FileWithoutKeyOrWithoutCertificateIsNotAnIdentity()
    {
        using var identity = NodeIdentity.Create();
        using var key = identity.Certificate.GetECDsaPrivateKey()!;
        var certificateOnly = Write("cert.pem", identity.Certificate.ExportCertificatePem());
        var keyOnly = Write("key.pem", key.ExportPkcs8PrivateKeyPem());

        Assert.Contains("no private key", Assert.Throws<InvalidDataException>(() => NodeIdentity.Load(certificateOnly)).Message, StringComparison.Ordinal);
        Assert.Contains("no certificate", Assert.Throws<InvalidDataException>(() => NodeIdentity.Load(keyOnly)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KeysOtherThanP256EcdsaAreRefused()
    {
        using var rsa = RSA.Create(2048);
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var rsaKey = Write("rsa.pem", rsa.ExportPkcs8PrivateKeyPem());
        var p384Key = Write("p384.pem", p384.ExportPkcs8PrivateKeyPem());
        var p384Public = Write("p384pub.pem", p384.ExportSubjectPublicKeyInfoPem());
        var encrypted = Write("enc.pem", p384.ExportEncryptedPkcs8PrivateKeyPem("pw", new PbeParameters(PbeEncryptionAlgorithm.Aes128Cbc, HashAlgorithmName.SHA256, 1)));

        Assert.Contains("RSA key, not ECDSA P-256", Assert.Throws<InvalidDataException>(() => NodeIdentity.Load(rsaKey)).Message, StringComparison.Ordinal);
        Assert.Contains("384-bit curve, not P-256", Assert.Throws<InvalidDataException>(() => NodeIdentity.Load(p384Key)).Message, StringComparison.Ordinal);
        Assert.Contains("384-bit curve, not P-256", Assert.Throws<InvalidDataException>(() => NodeIdentity.ReadNodeId(p384Public)).Message, StringComparison.Ordinal);
        Assert.Contains("encrypted", Assert.Throws<InvalidDataException>(() => NodeIdentity.ReadNodeId(encrypted)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NonPemAndEmptyFilesAreRefused()
    {
        var junk = Write("junk.pem", "hello");
        var other = Write("other.pem", "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");

        Assert.Contains("not a PEM file", Assert.Throws<InvalidDataException>(() => NodeIdentity.ReadNodeId(junk)).Message, StringComparison.Ordinal);
        Assert.Contains("no certificate, private key or public key", Assert.Throws<InvalidDataException>(() => NodeIdentity.ReadNodeId(other)).Message, StringComparison.Ordinal);
    }

    private string Write(string name, string text)
    {
        var path = _directory.File(name);
        File.WriteAllText(path, text);
        return path;
    }
}
