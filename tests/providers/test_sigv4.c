/* test_sigv4.c - AWS Signature Version 4 against AWS's published test
 * suite (aws-sig-v4-test-suite, 2015-08-30 edition: credentials
 * AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, region
 * us-east-1, service "service", 20150830T123600Z): for each case the
 * canonical request (.creq), string to sign (.sts) and Authorization
 * header (.authz) exactly; then the refusals, and the bounded XML reader
 * that the STS answers go through. */
#include <string.h>

#include "core/core.h"
#include "providers/sigv4.h"
#include "../tests.h"

#define AKID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define DATE "20150830T123600Z"
#define HOST "example.amazonaws.com"
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define STS_HEAD "AWS4-HMAC-SHA256\n" DATE "\n20150830/us-east-1/service/aws4_request\n"
#define AUTH_HEAD "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
#define SESSION_TOKEN                                                       \
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLW" \
    "sKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmG" \
    "deehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvl" \
    "Rd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKm" \
    "lzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

/* Sign and compare the three published artefacts. */
static void check_case(const char *method, const char *path,
                       const char *query, const sigv4_header *hs, size_t nh,
                       const char *payload, const char *creq,
                       const char *sts, const char *authz)
{
    sigv4_req r = {.method = method,
                   .path = path,
                   .query = query,
                   .headers = hs,
                   .nheaders = nh,
                   .payload = payload,
                   .payload_len = payload != NULL ? strlen(payload) : 0,
                   .region = "us-east-1",
                   .service = "service",
                   .amz_date = DATE};
    sigv4_out out;
    ai_err err = {0};

    ck_assert_msg(sigv4_sign(&r, AKID, SECRET, &out, &err) == AI_OK, "%s",
                  err.msg);
    ck_assert_str_eq(out.canonical, creq);
    ck_assert_str_eq(out.string_to_sign, sts);
    ck_assert_str_eq(out.authorization, authz);
    ck_assert_int_eq(strlen(out.signature), 64);
    ck_assert(t_has(authz, out.signature));
    sigv4_out_clear(&out);
}

static const sigv4_header plain[] = {{"Host", HOST}, {"X-Amz-Date", DATE}};

START_TEST(test_sigv4_suite_get_vanilla)
{
    check_case("GET", "/", NULL, plain, 2, NULL,
               "GET\n/\n\nhost:" HOST "\nx-amz-date:" DATE
               "\n\nhost;x-amz-date\n" EMPTY_SHA,
               STS_HEAD "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
               AUTH_HEAD "SignedHeaders=host;x-amz-date, "
               "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}
END_TEST

START_TEST(test_sigv4_suite_post_vanilla)
{
    check_case("POST", "/", NULL, plain, 2, "",
               "POST\n/\n\nhost:" HOST "\nx-amz-date:" DATE
               "\n\nhost;x-amz-date\n" EMPTY_SHA,
               STS_HEAD "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
               AUTH_HEAD "SignedHeaders=host;x-amz-date, "
               "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}
END_TEST

START_TEST(test_sigv4_suite_get_vanilla_query_order_key_case)
{
    check_case("GET", "/", "Param2=value2&Param1=value1", plain, 2, NULL,
               "GET\n/\nParam1=value1&Param2=value2\nhost:" HOST
               "\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_SHA,
               STS_HEAD "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
               AUTH_HEAD "SignedHeaders=host;x-amz-date, "
               "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}
END_TEST

START_TEST(test_sigv4_suite_get_vanilla_query_order_key)
{
    /* same key twice: sorted by value too (byte order, "V" < "v") */
    check_case("GET", "/", "Param1=value2&Param1=Value1", plain, 2, NULL,
               "GET\n/\nParam1=Value1&Param1=value2\nhost:" HOST
               "\nx-amz-date:" DATE "\n\nhost;x-amz-date\n" EMPTY_SHA,
               STS_HEAD "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
               AUTH_HEAD "SignedHeaders=host;x-amz-date, "
               "Signature=eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1");
}
END_TEST

START_TEST(test_sigv4_suite_post_x_www_form_urlencoded)
{
    const sigv4_header hs[] = {{"Content-Type",
                                "application/x-www-form-urlencoded"},
                               {"Host", HOST},
                               {"X-Amz-Date", DATE}};

    check_case("POST", "/", NULL, hs, 3, "Param1=value1",
               "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\n"
               "host:" HOST "\nx-amz-date:" DATE
               "\n\ncontent-type;host;x-amz-date\n"
               "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
               STS_HEAD "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
               AUTH_HEAD "SignedHeaders=content-type;host;x-amz-date, "
               "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}
END_TEST

START_TEST(test_sigv4_suite_post_x_www_form_urlencoded_parameters)
{
    const sigv4_header hs[] = {
        {"Content-Type", "application/x-www-form-urlencoded; charset=utf8"},
        {"Host", HOST},
        {"X-Amz-Date", DATE}};

    check_case("POST", "/", NULL, hs, 3, "Param1=value1",
               "POST\n/\n\ncontent-type:application/x-www-form-urlencoded; "
               "charset=utf8\nhost:" HOST "\nx-amz-date:" DATE
               "\n\ncontent-type;host;x-amz-date\n"
               "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
               STS_HEAD "2e1cf7ed91881a30569e46552437e4156c823447bf1781b921b5d486c568dd1c",
               AUTH_HEAD "SignedHeaders=content-type;host;x-amz-date, "
               "Signature=1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe");
}
END_TEST

START_TEST(test_sigv4_suite_get_header_value_trim)
{
    const sigv4_header hs[] = {{"Host", HOST},
                               {"My-Header1", " value1"},
                               {"My-Header2", " \"a   b   c\""},
                               {"X-Amz-Date", DATE}};

    check_case("GET", "/", NULL, hs, 4, NULL,
               "GET\n/\n\nhost:" HOST "\nmy-header1:value1\n"
               "my-header2:\"a b c\"\nx-amz-date:" DATE
               "\n\nhost;my-header1;my-header2;x-amz-date\n" EMPTY_SHA,
               STS_HEAD "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
               AUTH_HEAD "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
               "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}
END_TEST

START_TEST(test_sigv4_suite_get_header_key_duplicate)
{
    const sigv4_header hs[] = {{"Host", HOST},
                               {"My-Header1", "value2"},
                               {"My-Header1", "value2"},
                               {"My-Header1", "value1"},
                               {"X-Amz-Date", DATE}};

    check_case("GET", "/", NULL, hs, 5, NULL,
               "GET\n/\n\nhost:" HOST "\nmy-header1:value2,value2,value1\n"
               "x-amz-date:" DATE "\n\nhost;my-header1;x-amz-date\n" EMPTY_SHA,
               STS_HEAD "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
               AUTH_HEAD "SignedHeaders=host;my-header1;x-amz-date, "
               "Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea");
}
END_TEST

START_TEST(test_sigv4_suite_get_utf8)
{
    check_case("GET", "/\xe1\x88\xb4", NULL, plain, 2, NULL,
               "GET\n/%E1%88%B4\n\nhost:" HOST "\nx-amz-date:" DATE
               "\n\nhost;x-amz-date\n" EMPTY_SHA,
               STS_HEAD "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102",
               AUTH_HEAD "SignedHeaders=host;x-amz-date, "
               "Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
}
END_TEST

START_TEST(test_sigv4_suite_get_vanilla_utf8_query)
{
    check_case("GET", "/", "\xe1\x88\xb4=bar", plain, 2, NULL,
               "GET\n/\n%E1%88%B4=bar\nhost:" HOST "\nx-amz-date:" DATE
               "\n\nhost;x-amz-date\n" EMPTY_SHA,
               STS_HEAD "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
               AUTH_HEAD "SignedHeaders=host;x-amz-date, "
               "Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04");
}
END_TEST

START_TEST(test_sigv4_suite_normalize_path_get_slashes)
{
    check_case("GET", "//example//", NULL, plain, 2, NULL,
               "GET\n/example/\n\nhost:" HOST "\nx-amz-date:" DATE
               "\n\nhost;x-amz-date\n" EMPTY_SHA,
               STS_HEAD "cb96b4ac96d501f7c5c15bc6d67b3035061cfced4af6585ad927f7e6c985c015",
               AUTH_HEAD "SignedHeaders=host;x-amz-date, "
               "Signature=9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84");
}
END_TEST

START_TEST(test_sigv4_suite_normalize_path_relative_and_space)
{
    /* get-relative-relative and get-space */
    check_case("GET", "/example1/example2/../..", NULL, plain, 2, NULL,
               "GET\n/\n\nhost:" HOST "\nx-amz-date:" DATE
               "\n\nhost;x-amz-date\n" EMPTY_SHA,
               STS_HEAD "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
               AUTH_HEAD "SignedHeaders=host;x-amz-date, "
               "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    check_case("GET", "/example space/", NULL, plain, 2, NULL,
               "GET\n/example%20space/\n\nhost:" HOST "\nx-amz-date:" DATE
               "\n\nhost;x-amz-date\n" EMPTY_SHA,
               STS_HEAD "63ee75631ed7234ae61b5f736dfc7754cdccfedbff4b5128a915706ee9390d86",
               AUTH_HEAD "SignedHeaders=host;x-amz-date, "
               "Signature=652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741");
}
END_TEST

START_TEST(test_sigv4_suite_post_sts_header_before)
{
    const sigv4_header hs[] = {{"Host", HOST},
                               {"X-Amz-Date", DATE},
                               {"X-Amz-Security-Token", SESSION_TOKEN}};

    check_case("POST", "/", NULL, hs, 3, NULL,
               "POST\n/\n\nhost:" HOST "\nx-amz-date:" DATE
               "\nx-amz-security-token:" SESSION_TOKEN
               "\n\nhost;x-amz-date;x-amz-security-token\n" EMPTY_SHA,
               STS_HEAD "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
               AUTH_HEAD "SignedHeaders=host;x-amz-date;x-amz-security-token, "
               "Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
}
END_TEST

START_TEST(test_sigv4_amz_date_formats_utc)
{
    char d[SIGV4_DATE_LEN + 1];

    sigv4_amz_date(INT64_C(1440938160000), d);
    ck_assert_str_eq(d, DATE);
    sigv4_amz_date(0, d);
    ck_assert_str_eq(d, "19700101T000000Z");
}
END_TEST

START_TEST(test_sigv4_uri_encode_uses_aws_rules)
{
    ai_buf b;

    buf_init(&b);
    sigv4_uri_encode(&b, "a b+c/~*", 8, false);
    ck_assert_str_eq(b.p, "a%20b%2Bc%2F~%2A");
    buf_free(&b);
}
END_TEST

static ai_code sign_with(const sigv4_header *hs, size_t nh,
                         const char *akid, const char *secret, ai_err *err)
{
    sigv4_req r = {.method = "GET", .path = "/", .headers = hs,
                   .nheaders = nh, .region = "us-east-1",
                   .service = "service", .amz_date = DATE};
    sigv4_out out;
    ai_code rc;

    memset(err, 0, sizeof *err);
    rc = sigv4_sign(&r, akid, secret, &out, err);
    if (rc == AI_OK)
        sigv4_out_clear(&out);
    else
        ck_assert_ptr_null(out.authorization);
    return rc;
}

START_TEST(test_sigv4_refuses_crlf_in_header_value)
{
    const sigv4_header hs[] = {{"Host", HOST},
                               {"X-Amz-Date", DATE},
                               {"X-Evil", "a\r\nInjected: 1"}};
    ai_err err;

    ck_assert_int_eq(sign_with(hs, 3, AKID, SECRET, &err), AI_EINVAL);
}
END_TEST

START_TEST(test_sigv4_refuses_unsigned_host_or_date)
{
    const sigv4_header hs[] = {{"Host", HOST}};
    ai_err err;

    ck_assert_int_eq(sign_with(hs, 1, AKID, SECRET, &err), AI_EINVAL);
}
END_TEST

START_TEST(test_sigv4_refuses_bad_key_without_echoing_it)
{
    ai_err err;

    ck_assert_int_eq(sign_with(plain, 2, AKID, "", &err), AI_EINVAL);
    ck_assert_int_eq(sign_with(plain, 2, "AKID/../x", SECRET, &err),
                     AI_EINVAL);
    ck_assert(!t_has(err.msg, "AKID/../x"));
}
END_TEST

/* ---- xml.c ------------------------------------------------------------ */

static ai_code xt(const char *doc, const char *const *path, size_t n,
                  char *out, size_t cap, const char **why)
{
    return xml_text(doc, strlen(doc), path, n, out, cap, why);
}

START_TEST(test_xml_reads_text_by_path_with_entities)
{
    static const char *const p[] = {"A", "B", "C"};
    const char *why;
    char out[64];

    ck_assert_int_eq(
        xt("<?xml version=\"1.0\"?>\n<A xmlns=\"urn:x\"><!-- c --><B>"
           "<C>x&amp;y&#65;&#x42;&lt;</C><C>second</C></B></A>\n",
           p, 3, out, sizeof out, &why),
        AI_OK);
    ck_assert_str_eq(out, "x&yAB<");
}
END_TEST

START_TEST(test_xml_refuses_malformed_documents)
{
    static const char *const p[] = {"A", "B"};
    static const char *const bad[] = {
        "<A><B>x</A></B>",
        "<A><B>x</B>",
        "<!DOCTYPE A [<!ENTITY e \"x\">]><A><B>&e;</B></A>",
        "<A><B><![CDATA[x]]></B></A>",
        "<A><B>&foo;</B></A>",
        "<A><B>x</B></A><A/>",
        "text<A><B>x</B></A>",
        "<A><B a=x>y</B></A>",
        "",
        "<A><B>&#0;</B></A>",
    };
    const char *why;
    char out[16];

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_msg(xt(bad[i], p, 2, out, sizeof out, &why) == AI_EINVAL,
                      "accepted: %s", bad[i]);
        ck_assert_ptr_nonnull(why);
        ck_assert_str_eq(out, "");
    }
}
END_TEST

START_TEST(test_xml_missing_or_too_long_is_not_ok)
{
    static const char *const p[] = {"A", "B"};
    const char *why;
    char out[4];

    ck_assert_int_eq(xt("<A><C>x</C></A>", p, 2, out, sizeof out, &why),
                     AI_ENOTFOUND);
    ck_assert_int_eq(xt("<A><B><D/></B></A>", p, 2, out, sizeof out, &why),
                     AI_ENOTFOUND);
    ck_assert_int_eq(xt("<A><B>long</B></A>", p, 2, out, sizeof out, &why),
                     AI_ENOBUFS);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_xml_refuses_deep_nesting)
{
    static const char *const p[] = {"A"};
    char doc[512] = "";
    const char *why;
    char out[4];

    for (int i = 0; i < XML_MAX_DEPTH + 1; i++)
        strcat(doc, "<A>");
    for (int i = 0; i < XML_MAX_DEPTH + 1; i++)
        strcat(doc, "</A>");
    ck_assert_int_eq(xt(doc, p, 1, out, sizeof out, &why), AI_EINVAL);
}
END_TEST

/* The providers_sigv4 suite. */
Suite *suite_providers_sigv4(void)
{
    Suite *s = suite_create("providers_sigv4");
    TCase *tc = tcase_create("sigv4");
    TCase *tx = tcase_create("xml");

    tcase_add_test(tc, test_sigv4_suite_get_vanilla);
    tcase_add_test(tc, test_sigv4_suite_post_vanilla);
    tcase_add_test(tc, test_sigv4_suite_get_vanilla_query_order_key_case);
    tcase_add_test(tc, test_sigv4_suite_get_vanilla_query_order_key);
    tcase_add_test(tc, test_sigv4_suite_post_x_www_form_urlencoded);
    tcase_add_test(tc,
                   test_sigv4_suite_post_x_www_form_urlencoded_parameters);
    tcase_add_test(tc, test_sigv4_suite_get_header_value_trim);
    tcase_add_test(tc, test_sigv4_suite_get_header_key_duplicate);
    tcase_add_test(tc, test_sigv4_suite_get_utf8);
    tcase_add_test(tc, test_sigv4_suite_get_vanilla_utf8_query);
    tcase_add_test(tc, test_sigv4_suite_normalize_path_get_slashes);
    tcase_add_test(tc, test_sigv4_suite_normalize_path_relative_and_space);
    tcase_add_test(tc, test_sigv4_suite_post_sts_header_before);
    tcase_add_test(tc, test_sigv4_amz_date_formats_utc);
    tcase_add_test(tc, test_sigv4_uri_encode_uses_aws_rules);
    tcase_add_test(tc, test_sigv4_refuses_crlf_in_header_value);
    tcase_add_test(tc, test_sigv4_refuses_unsigned_host_or_date);
    tcase_add_test(tc, test_sigv4_refuses_bad_key_without_echoing_it);
    tcase_add_test(tx, test_xml_reads_text_by_path_with_entities);
    tcase_add_test(tx, test_xml_refuses_malformed_documents);
    tcase_add_test(tx, test_xml_missing_or_too_long_is_not_ok);
    tcase_add_test(tx, test_xml_refuses_deep_nesting);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, tx);
    return s;
}
