/*
 * Lint for the plugin folder (src/) with the rules Vencord's own ESLint config enforces on
 * src/**, so the folder can be copied into a Vencord checkout, or offered upstream, and pass its
 * `pnpm lint` unchanged: the GPL-3.0-or-later license header, simple-import-sort order, no
 * unused imports, and Vencord's style rules. Two of Vencord's plugins are left out:
 * eslint-plugin-react (the plugin has no JSX, and it does not support ESLint 10) and
 * eslint-plugin-path-alias (Vencord patches it to flag only `../` imports, and the plugin has
 * none: test/plugin-shape.test.ts checks that).
 */

import stylistic from "@stylistic/eslint-plugin";
import header from "eslint-plugin-simple-header";
import simpleImportSort from "eslint-plugin-simple-import-sort";
import unusedImports from "eslint-plugin-unused-imports";
import tseslint from "typescript-eslint";

export default tseslint.config(
    { ignores: ["dist", "node_modules", "test", "tools"] },
    {
        files: ["src/**/*.ts"],
        plugins: {
            "simple-header": header,
            "@stylistic": stylistic,
            "@typescript-eslint": tseslint.plugin,
            "simple-import-sort": simpleImportSort,
            "unused-imports": unusedImports,
        },
        languageOptions: {
            parser: tseslint.parser,
            parserOptions: {
                project: ["./tsconfig.vencord.json"],
                tsconfigRootDir: import.meta.dirname,
            },
        },
        rules: {
            // Vencord requires this header on every file (scripts/header-new.txt in its tree).
            "simple-header/header": ["error", {
                text: [
                    "Vencord, a Discord client mod",
                    "Copyright (c) {year} {author}",
                    "SPDX-License-Identifier: GPL-3.0-or-later",
                ],
                templates: { author: [".*", "G3netic Signals"] },
            }],

            "@stylistic/quotes": ["error", "double", { avoidEscape: true }],
            "@stylistic/no-mixed-spaces-and-tabs": "error",
            "@stylistic/arrow-parens": ["error", "as-needed"],
            "@stylistic/eol-last": ["error", "always"],
            "@stylistic/no-multi-spaces": "error",
            "@stylistic/no-trailing-spaces": "error",
            "@stylistic/no-whitespace-before-property": "error",
            "@stylistic/semi": ["error", "always"],
            "@stylistic/semi-style": ["error", "last"],
            "@stylistic/space-in-parens": ["error", "never"],
            "@stylistic/block-spacing": ["error", "always"],
            "@stylistic/object-curly-spacing": ["error", "always"],
            "@stylistic/spaced-comment": ["error", "always", { markers: ["!"] }],
            "@stylistic/no-extra-semi": "error",
            "@stylistic/function-call-spacing": ["error", "never"],

            "yoda": "error",
            "eqeqeq": ["error", "always", { null: "ignore" }],
            "prefer-destructuring": ["error", {
                VariableDeclarator: { array: false, object: true },
                AssignmentExpression: { array: false, object: false },
            }],
            "operator-assignment": ["error", "always"],
            "no-useless-computed-key": "error",
            "no-unneeded-ternary": ["error", { defaultAssignment: false }],
            "no-invalid-regexp": "error",
            "no-constant-condition": ["error", { checkLoops: false }],
            "no-duplicate-imports": "error",
            "@typescript-eslint/dot-notation": ["error", {
                allowPrivateClassPropertyAccess: true,
                allowProtectedClassPropertyAccess: true,
            }],
            "no-useless-escape": ["error", { allowRegexCharacters: ["i"] }],
            "no-fallthrough": "error",
            "for-direction": "error",
            "no-async-promise-executor": "error",
            "no-cond-assign": "error",
            "no-dupe-else-if": "error",
            "no-duplicate-case": "error",
            "no-irregular-whitespace": "error",
            "no-loss-of-precision": "error",
            "no-misleading-character-class": "error",
            "no-prototype-builtins": "error",
            "no-regex-spaces": "error",
            "no-shadow-restricted-names": "error",
            "no-unexpected-multiline": "error",
            "no-unsafe-optional-chaining": "error",
            "no-useless-backreference": "error",
            "use-isnan": "error",
            "prefer-const": ["error", { destructuring: "all" }],
            "prefer-spread": "error",
            "no-restricted-globals": ["error", "event", "name"],

            "simple-import-sort/imports": "error",
            "simple-import-sort/exports": "error",
            "unused-imports/no-unused-imports": "error",
        },
    },
);
